"""XLA flags the project chooses per platform (documented, overridable).

On the CPU, XLA's YNNPACK fusion of lone convolutions is slower for these
models than XLA's own convolutions: turning it off made the NiN training step
in float32 1.9x faster on the project's machine (README, "Performance"). Lone
dots stay with YNNPACK: in float32 they are as fast there as XLA's own, and
YNNPACK's are the only kernels that run bfloat16 dots (with float32
accumulation, as nin/layers.py writes them) faster than float32 ones. The
flag is added only
when no GPU or TPU plugin is installed (or JAX_PLATFORMS=cpu), only if
XLA_FLAGS does not already set it, and not at all with NIN_XLA_FLAGS=0. It
must be set before JAX creates its backend: the command-line tools call
`configure()` first thing (nin/cli.py); in a notebook, call it before
importing JAX:

    from nin import xla_flags; xla_flags.configure()
"""
import importlib.util
import os

CPU_FLAGS = ('--xla_cpu_experimental_ynn_fusion_type=-individual_convolution',)
_ACCELERATOR_PLUGINS = ('jax_cuda12_plugin', 'jax_cuda13_plugin', 'jax_rocm60_plugin', 'libtpu')


def cpu_only() -> bool:
  """True when JAX will run on the CPU alone (no accelerator plugin, or JAX_PLATFORMS=cpu)."""
  platforms = os.environ.get('JAX_PLATFORMS', '')
  if platforms:
    return platforms.split(',')[0].strip() == 'cpu'
  return not any(importlib.util.find_spec(p) for p in _ACCELERATOR_PLUGINS)


def configure() -> None:
  if os.environ.get('NIN_XLA_FLAGS', '1') == '0' or not cpu_only():
    return
  current = os.environ.get('XLA_FLAGS', '')
  extra = [f for f in CPU_FLAGS if f.split('=')[0] not in current]
  if extra:
    os.environ['XLA_FLAGS'] = ' '.join([current, *extra]).strip()
