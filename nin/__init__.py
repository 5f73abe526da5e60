"""nin: Network-in-Network, Inception and 3x3-only nets on CIFAR-10 in JAX/Flax.

Submodules are imported explicitly (`from nin import train`), so that
`nin.layers` stays importable without the rest of the library.
"""
__version__ = '0.1.0'

from nin import xla_flags as _xla_flags

_xla_flags.configure()  # Before JAX creates its backend; see nin/xla_flags.py.
