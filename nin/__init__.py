"""nin: Network-in-Network, Inception and 3x3-only nets on CIFAR-10 in JAX/Flax.

The library is in subpackages by job (README, "Where things live"): layers/,
data/, train/, evaluation/, experiments/, launch/, runtime/, checks/; the
command-line tools are `python -m nin TOOL` (nin/__main__.py), train.py and
eval.py. Submodules are imported explicitly (`from nin import train`), so that
`nin.layers` stays importable without the rest of the library. Importing any
of them changes nothing in the process: the CPU settings the command-line
tools apply (nin/runtime/xla_flags.py, nin/runtime/malloc.py) are applied by
`nin.cli.main`; a notebook calls `nin.runtime.xla_flags.configure()` before it
imports JAX.
"""
__version__ = '0.1.0'
