"""Devices, hosts and the data-parallel mesh.

One mesh axis, 'data', spans every device of every host. Parameters are
replicated; batches are split along 'data'. The same code runs on one CPU,
eight GPUs or a TPU slice; with several processes, `initialize()` runs before
any other JAX call (train_and_evaluate and evaluate_run call it first).

Launching several processes: on Cloud TPU and under SLURM (`srun`), JAX finds
its peers itself. Anywhere else, give every process the same
`JAX_COORDINATOR_ADDRESS=host:port` (the address of process 0) and
`NIN_NUM_PROCESSES`, and each its own `NIN_PROCESS_ID` (0 .. count-1).

A process that dies is seen at once (its connections close); one that hangs
(stopped, or cut off by the network) is seen only when it misses its
heartbeats: within JAX's 100 seconds, or `NIN_HEARTBEAT_TIMEOUT_SEC` (set the
same on every process). On this project's machine a stopped peer of a
two-process run was reported after 81 s by default and 14 s with 15.
"""
import inspect
import os

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from nin.errors import ConfigError

DATA = 'data'


def launched_as_several_processes() -> bool:
  """Whether a launcher (coordinator address, SLURM, Cloud TPU) started several processes."""
  if os.environ.get('JAX_COORDINATOR_ADDRESS'):
    return True
  if int(os.environ.get('SLURM_NTASKS', '1')) > 1:
    return True
  return len([h for h in os.environ.get('TPU_WORKER_HOSTNAMES', '').split(',') if h]) > 1


def _int_env(name):
  value = os.environ.get(name)
  if value is None:
    return None
  if not value.isdigit():
    raise ConfigError(f'{name}={value!r} must be a non-negative integer')
  return int(value)


def initialize() -> None:
  """Joins the other processes when launched as one of several; idempotent."""
  if not launched_as_several_processes() or jax.distributed.is_initialized():
    return
  num, pid = _int_env('NIN_NUM_PROCESSES'), _int_env('NIN_PROCESS_ID')
  if (num is None) != (pid is None):
    raise ConfigError('NIN_NUM_PROCESSES and NIN_PROCESS_ID go together: set both or neither')
  if num is not None and not pid < num:
    raise ConfigError(f'NIN_PROCESS_ID={pid} must be below NIN_NUM_PROCESSES={num}')
  jax.distributed.initialize(num_processes=num, process_id=pid, **_heartbeat())


def _heartbeat() -> dict:
  timeout = _int_env('NIN_HEARTBEAT_TIMEOUT_SEC')
  if timeout is None:
    return {}
  if timeout < 1:
    raise ConfigError(f'NIN_HEARTBEAT_TIMEOUT_SEC={timeout} must be at least 1 (seconds)')
  if 'heartbeat_timeout_seconds' not in inspect.signature(jax.distributed.initialize).parameters:
    raise ConfigError(f'NIN_HEARTBEAT_TIMEOUT_SEC needs a newer JAX than {jax.__version__}, '
                      'whose jax.distributed.initialize takes heartbeat_timeout_seconds')
  return {'heartbeat_timeout_seconds': timeout}


def make_mesh() -> Mesh:
  """All devices on one 'data' axis, each host's devices contiguous."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(devices, (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def check_batch_size(batch_size: int, what: str = 'batch_size') -> None:
  """A global batch is split evenly over all devices of all processes."""
  n = jax.device_count()
  if not isinstance(batch_size, int) or batch_size <= 0 or batch_size % n:
    raise ConfigError(f'{what}={batch_size} must be a positive multiple of the device count '
                      f'({n} device{"s" if n > 1 else ""})')
