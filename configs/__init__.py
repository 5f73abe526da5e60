"""Experiment configs: one `get_config(arg)` file per family, over `common.py`."""
