"""A finished (or running) run evaluated from its workdir (eval.py), and NiN's class maps."""
