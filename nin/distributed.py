"""Devices, hosts and the data-parallel mesh.

One mesh axis, 'data', spans every device of every host. Parameters are
replicated; batches are split along 'data'. The same code runs on one CPU,
eight GPUs or a TPU slice; with several hosts, `initialize()` must run first
(on Cloud TPU and SLURM, `jax.distributed.initialize()` finds its peers).
"""
import os

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from nin.errors import ConfigError

DATA = 'data'


def _launched_as_several_processes() -> bool:
  if os.environ.get('JAX_COORDINATOR_ADDRESS'):
    return True
  if int(os.environ.get('SLURM_NTASKS', '1')) > 1:
    return True
  return len([h for h in os.environ.get('TPU_WORKER_HOSTNAMES', '').split(',') if h]) > 1


def initialize() -> None:
  """Joins the other hosts when launched as one of several processes."""
  if _launched_as_several_processes() and not jax.distributed.is_initialized():
    jax.distributed.initialize()


def make_mesh() -> Mesh:
  """All devices on one 'data' axis, each host's devices contiguous."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(devices, (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def check_batch_size(batch_size: int, what: str = 'batch_size') -> None:
  n = jax.device_count()
  if batch_size <= 0 or batch_size % n:
    raise ConfigError(f'{what}={batch_size} must be a positive multiple of the device '
                     f'count ({n} devices)')
