"""nin: Network-in-Network, Inception and 3x3-only nets on CIFAR-10 in JAX/Flax.

Submodules are imported explicitly (`from nin import train`), so that
`nin.layers` stays importable without the rest of the library. Importing any
of them changes nothing in the process: the CPU settings the command-line
tools apply (nin/xla_flags.py, nin/malloc.py) are applied by `nin.cli.main`;
a notebook calls `nin.xla_flags.configure()` before it imports JAX.
"""
__version__ = '0.1.0'
