"""When the trainer joins other hosts, and two processes on one machine training as one."""
import socket
import subprocess
import sys

import pytest

import runs
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


_ARGS = ('--config', 'configs/nin.py:smoke', '--config.num_epochs=2', '--config.log_every_steps=2')


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launcher_env(launcher, i, port):
  if launcher == 'env':
    return {'JAX_COORDINATOR_ADDRESS': f'127.0.0.1:{port}', 'NIN_NUM_PROCESSES': '2',
            'NIN_PROCESS_ID': str(i)}
  # SLURM on one machine: JAX derives the coordinator's port from the job id.
  return {'SLURM_JOB_ID': str(port), 'SLURM_STEP_NODELIST': '127.0.0.1', 'SLURM_NTASKS': '2',
          'SLURM_PROCID': str(i), 'SLURM_LOCALID': str(i)}


def _comparable(workdir):
  return [{k: v for k, v in r.items() if k != 'devices'} for r in runs.records(workdir)]


@pytest.mark.parametrize('launcher', ['env', 'slurm'])
def test_two_processes_train_exactly_like_one_process_with_two_devices(tmp_path, launcher):
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  runs.cli('train.py', *_ARGS, '--workdir', one, devices=2, check=True)
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, 'train.py', *_ARGS, '--workdir', two], cwd=runs.ROOT,
                            env={**runs.env(1), **_launcher_env(launcher, i, port)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs
  assert all('Done: step 16' in out for out, _ in outs)
  assert runs.final(two)['devices'] == 2
  assert _comparable(two) == _comparable(one)  # Every loss and accuracy, bitwise.
  final_one, final_two = runs.final(one), runs.final(two)
  for key in ('test_loss', 'test_accuracy', 'val_loss', 'val_accuracy', 'train_loss'):
    assert final_two[key] == final_one[key], key


@pytest.mark.parametrize('env,message', [
    ({'NIN_NUM_PROCESSES': '2'}, 'set both or neither'),
    ({'NIN_NUM_PROCESSES': '2', 'NIN_PROCESS_ID': 'one'}, "NIN_PROCESS_ID='one' must be"),
    ({'NIN_NUM_PROCESSES': '2', 'NIN_PROCESS_ID': '2'}, 'NIN_PROCESS_ID=2 must be below'),
])
def test_bad_process_variables_are_one_line_errors(monkeypatch, env, message):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', '127.0.0.1:1')
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  with pytest.raises(distributed.ConfigError, match=message):
    distributed.initialize()
