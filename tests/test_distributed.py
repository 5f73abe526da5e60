"""When the trainer joins other hosts."""
import pytest

from nin import distributed


@pytest.mark.parametrize('env,expected', [
    ({}, False),
    ({'SLURM_NTASKS': '1'}, False),
    ({'SLURM_NTASKS': '4'}, True),
    ({'JAX_COORDINATOR_ADDRESS': '10.0.0.1:1234'}, True),
    ({'TPU_WORKER_HOSTNAMES': 'host0'}, False),
    ({'TPU_WORKER_HOSTNAMES': 'host0,host1'}, True),
])
def test_several_processes_are_detected_from_the_launcher(monkeypatch, env, expected):
  for k in ('SLURM_NTASKS', 'JAX_COORDINATOR_ADDRESS', 'TPU_WORKER_HOSTNAMES'):
    monkeypatch.delenv(k, raising=False)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert distributed._launched_as_several_processes() is expected


def test_mesh_spans_every_device_on_one_data_axis():
  mesh = distributed.make_mesh()
  assert mesh.axis_names == (distributed.DATA,) and mesh.devices.size >= 1
