"""Checks of a machine: the training-step benchmark (nin/checks/bench.py) and the
prepared accelerator check (nin/checks/device_check.py, its parts and its report)."""
