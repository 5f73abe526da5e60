"""XLA flags the project chooses per platform (documented, overridable).

On the CPU, XLA's YNNPACK fusion of lone convolutions is slower for these
models than XLA's own convolutions: turning it off made the NiN training step
in float32 1.9x faster on the project's machine (docs/bench/README.md). Lone
dots stay with YNNPACK: in float32 they are as fast there as XLA's own, and
YNNPACK's are the only kernels that run bfloat16 dots (with float32
accumulation, as nin/layers/conv.py writes them) faster than float32 ones. The
flag is added only
when no GPU or TPU plugin is installed (or JAX_PLATFORMS=cpu), only if
XLA_FLAGS does not already set it, and not at all with NIN_XLA_FLAGS=0. It
must be set before JAX creates its backend: the command-line tools call
`configure()` first thing (nin/cli.py); in a notebook, call it before
importing JAX:

    from nin.runtime import xla_flags; xla_flags.configure()
"""
import importlib.metadata
import importlib.util
import os

CPU_FLAGS = ('--xla_cpu_experimental_ynn_fusion_type=-individual_convolution',)
# Plugins JAX may load without declaring an entry point (older CUDA plugins, Cloud TPU's).
_ACCELERATOR_MODULES = ('jax_cuda12_plugin', 'jax_cuda13_plugin', 'libtpu')


def accelerator_plugins() -> list:
  """The GPU and TPU plugins of JAX installed here: what JAX itself discovers (the
  `jax_plugins` entry points: CUDA and ROCm of any version), and the known modules."""
  found = [ep.value for ep in importlib.metadata.entry_points(group='jax_plugins')]
  return found + [m for m in _ACCELERATOR_MODULES
                  if m not in found and importlib.util.find_spec(m)]


def cpu_only() -> bool:
  """True when JAX will run on the CPU alone (no accelerator plugin, or JAX_PLATFORMS=cpu)."""
  platforms = os.environ.get('JAX_PLATFORMS', '')
  if platforms:
    return platforms.split(',')[0].strip() == 'cpu'
  return not accelerator_plugins()


def configure() -> None:
  if os.environ.get('NIN_XLA_FLAGS', '1') == '0' or not cpu_only():
    return
  current = os.environ.get('XLA_FLAGS', '')
  extra = [f for f in CPU_FLAGS if f.split('=')[0] not in current]
  if extra:
    os.environ['XLA_FLAGS'] = ' '.join([current, *extra]).strip()
