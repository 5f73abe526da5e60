"""The process a run lives in: devices, hosts and the mesh; a dead peer; XLA flags, malloc
and the determinism switch.

Importing this package imports no JAX; nin/runtime/distributed.py does."""
