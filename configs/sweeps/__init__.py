"""Sweeps: files whose `get_sweep(arg)` lists runs as config overrides (see nin/launch/sweep.py)."""
