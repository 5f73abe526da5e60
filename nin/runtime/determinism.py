"""Same config, same seed, same run: what `config.deterministic` asks of the platform.

On the CPU, XLA runs every operation the same way each time, so two runs of
one config and seed write the same metrics bit for bit, with the switch or
without it (tests/test_train.py trains twice and compares). On a GPU two things
are not repeatable by default: reductions and scatters that add with atomics in
whatever order threads finish, and autotuning, which may pick another
convolution algorithm in another process. XLA's `--xla_gpu_deterministic_ops`
turns both off (deterministic algorithms only, autotuned among themselves).
XLA reads it when JAX creates its backend, so `require()` runs first thing in
`train_and_evaluate`; in a process whose GPU backend already exists (a notebook
that ran JAX code before) it refuses in one line, naming the variable to set.
Its cost on a GPU is not measured yet (docs/gpu: the device check's
`determinism` part trains twice with it and compares).
"""
import os

from nin.errors import ConfigError
from nin.runtime import xla_flags

GPU_FLAG = '--xla_gpu_deterministic_ops'


def _flag_value(xla_flags_env: str):
  """The value XLA_FLAGS gives the GPU flag ('true', 'false', ...), or None if absent."""
  for item in xla_flags_env.split():
    name, _, value = item.partition('=')
    if name == GPU_FLAG:
      return value.lower() or 'true'
  return None


def require(value=True) -> str:
  """Makes this process's runs repeatable bit for bit; returns what it did, in words.

  `value` is the config's `deterministic`, which must be a bool.
  """
  if value is not True:
    raise ConfigError(f'deterministic={value!r} must be True or False')
  current = os.environ.get('XLA_FLAGS', '')
  value = _flag_value(current)
  if value is not None and value not in ('true', '1'):
    raise ConfigError(f'deterministic=True conflicts with XLA_FLAGS {GPU_FLAG}={value}; '
                      f'drop that flag or set deterministic=False')
  if xla_flags.cpu_only():
    return 'the CPU: deterministic without any setting'
  if value is None:
    from jax._src import xla_bridge  # JAX has no public test of this.
    if xla_bridge.backends_are_initialized():
      raise ConfigError(f'deterministic=True must be set before JAX starts its GPU backend: '
                        f'start the process with XLA_FLAGS={GPU_FLAG}=true')
    os.environ['XLA_FLAGS'] = f'{current} {GPU_FLAG}=true'.strip()
  return f'XLA_FLAGS {GPU_FLAG}=true'
