"""Sweeps: a sweep's runs, run one after another here (nin/launch/sweep.py) or
submitted as one job array to SLURM (nin/launch/slurm.py)."""
