"""When the trainer joins other hosts, and two processes on one machine training as one."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import runs
from nin.runtime import distributed, peer_failure


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
  assert distributed.launched_as_several_processes() is expected


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
    ({'NIN_HEARTBEAT_TIMEOUT_SEC': '0'}, r'NIN_HEARTBEAT_TIMEOUT_SEC=0 must be at least 1'),
    ({'NIN_HEARTBEAT_TIMEOUT_SEC': '1.5'}, "NIN_HEARTBEAT_TIMEOUT_SEC='1.5' must be a non-neg"),
])
def test_bad_process_variables_are_one_line_errors(monkeypatch, env, message):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', '127.0.0.1:1')
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  with pytest.raises(distributed.ConfigError, match=message):
    distributed.initialize()


@pytest.mark.parametrize('env,kwargs', [
    ({}, {}),  # SLURM or Cloud TPU: JAX finds the processes, and its heartbeat timeout holds.
    ({'NIN_NUM_PROCESSES': '2', 'NIN_PROCESS_ID': '1', 'NIN_HEARTBEAT_TIMEOUT_SEC': '15'},
     {'num_processes': 2, 'process_id': 1, 'heartbeat_timeout_seconds': 15}),
])
def test_the_process_variables_reach_jax(monkeypatch, env, kwargs):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', '127.0.0.1:1')
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  calls = []

  def initialize(num_processes=None, process_id=None, heartbeat_timeout_seconds=None):
    given = {'num_processes': num_processes, 'process_id': process_id,
             'heartbeat_timeout_seconds': heartbeat_timeout_seconds}
    calls.append({k: v for k, v in given.items() if v is not None})
  monkeypatch.setattr(distributed.jax.distributed, 'initialize', initialize)
  distributed.initialize()
  assert calls == [kwargs]


def _start_two(args, workdir, port, **env):
  return [subprocess.Popen([sys.executable, 'train.py', *args, '--workdir', workdir],
                           cwd=runs.ROOT, env={**runs.env(1), **_launcher_env('env', i, port), **env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for i in range(2)]


def test_sigterm_to_one_of_two_processes_stops_both_at_one_step(tmp_path):
  workdir = str(tmp_path / 'two')
  args = ('--config', 'configs/nin.py:smoke', '--config.num_epochs=100',
          '--config.eval_every_epochs=50', '--config.log_every_steps=2')
  procs = _start_two(args, workdir, _free_port())
  deadline = time.time() + 180
  while time.time() < deadline and all(p.poll() is None for p in procs) and not (
      os.path.exists(os.path.join(workdir, 'metrics.jsonl')) and len(runs.records(workdir)) >= 3):
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)  # Only the second process is told.
  outs = [p.communicate(timeout=120) for p in procs]
  assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, outs
  steps = {int(err.split('at step ')[1].split(';')[0]) for _, err in outs}
  assert len(steps) == 1, outs  # Both stopped at the same step ...
  step = steps.pop()
  assert step % 2 == 0 and str(step) in os.listdir(os.path.join(workdir, 'checkpoints'))
  resumed = _start_two((*args, f'--config.num_train_steps={step + 2}', '--allow_config_change'),
                       workdir, _free_port())
  outs = [p.communicate(timeout=300) for p in resumed]
  assert [p.returncode for p in resumed] == [0, 0], outs
  assert f'Resuming from step {step}' in outs[0][0] and runs.final(workdir)['step'] == step + 2


def test_two_processes_killed_together_resume_to_the_two_device_metrics(tmp_path):
  """SIGKILL of every process (a lost allocation): the rerun resumes from the last
  checkpoint and ends exactly where one process with two devices ends."""
  args = ('--config', 'configs/nin.py:smoke', '--config.num_epochs=3',
          '--config.eval_every_epochs=1', '--config.log_every_steps=4')
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  runs.cli('train.py', *args, '--workdir', one, devices=2, check=True)
  procs = _start_two(args, two, _free_port())
  ckpts = os.path.join(two, 'checkpoints')
  deadline = time.time() + 180
  while time.time() < deadline and all(p.poll() is None for p in procs):
    if os.path.isdir(ckpts) and any(d.isdigit() for d in os.listdir(ckpts)):
      break
    time.sleep(0.02)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  for p in procs:
    p.communicate(timeout=60)
  assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2, 'finished before the kill'
  assert not os.path.exists(os.path.join(two, 'final_metrics.json'))
  resumed = _start_two(args, two, _free_port())
  outs = [p.communicate(timeout=300) for p in resumed]
  assert [p.returncode for p in resumed] == [0, 0], outs
  assert 'Resuming from step' in outs[0][0]
  assert _comparable(two) == _comparable(one)
  for key in ('test_loss', 'test_accuracy', 'val_loss', 'val_accuracy', 'train_loss', 'step'):
    assert runs.final(two)[key] == runs.final(one)[key], key


# The rerun resumes alike whichever process died (and when both did: the test above), so
# it is checked once, after the harder death: process 0's, which writes the checkpoints.
@pytest.mark.parametrize('victim,resume', [(0, True), (1, False)])
def test_a_process_whose_peer_died_says_so_in_one_line_and_the_run_resumes(tmp_path, victim,
                                                                          resume):
  """Killing process 0 takes the coordinator with it (JAX's runtime ends the survivor
  from C++); killing process 1 fails the survivor's next collective in Python."""
  workdir = str(tmp_path / 'two')
  args = ('--config', 'configs/nin.py:smoke', '--config.num_epochs=100',
          '--config.eval_every_epochs=1', '--config.log_every_steps=2')
  # A peer that goes silent without closing its connections is seen only when its
  # heartbeats stop: within 15 seconds here, not JAX's 100.
  procs = _start_two(args, workdir, _free_port(), NIN_HEARTBEAT_TIMEOUT_SEC='15')
  ckpts = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + 180
  while time.time() < deadline and all(p.poll() is None for p in procs) and not (
      os.path.isdir(ckpts) and any(d.isdigit() for d in os.listdir(ckpts))):
    time.sleep(0.05)
  procs[victim].send_signal(signal.SIGKILL)
  survivor = procs[1 - victim]
  _, err = survivor.communicate(timeout=300)
  procs[victim].wait()
  assert procs[victim].returncode == -signal.SIGKILL and survivor.returncode != 0, err
  lines = err.strip().splitlines()
  assert len(lines) == 1, err  # No traceback, no runtime dump.
  assert lines[0].startswith(f'Error: process {1 - victim} of 2 stopped: ') and lines[0].endswith(
      'run the same command on every process to resume from the last checkpoint'), err
  saved = max(int(d) for d in os.listdir(ckpts) if d.isdigit())
  if not resume:
    return
  resumed = _start_two((*args, f'--config.num_train_steps={saved + 4}', '--allow_config_change'),
                       workdir, _free_port())
  outs = [p.communicate(timeout=300) for p in resumed]
  assert [p.returncode for p in resumed] == [0, 0], outs
  assert f'Resuming from step {saved}' in outs[0][0] and runs.final(workdir)['step'] == saved + 4


@pytest.mark.parametrize('text,why', [
    ('JaxRuntimeError: UNKNOWN: Gloo all-reduce failed: [external/gloo/gloo/transport/tcp/'
     'pair.cc:538] Read error [127.0.0.1]:10973: Connection reset by peer',
     'another process of the run is gone (connection reset by peer)'),
    ('F1204 client.h:80] Terminating process because the JAX distributed service detected fatal '
     'errors. absl::Status: UNAVAILABLE: Failed to send RPC to coordination service. Either the '
     'leader task was preempted/died', 'process 0, which coordinates the run, is gone'),
    ('F1204 client.h:80] Terminating process because the JAX distributed service detected fatal '
     "errors. Barrier result: 'INTERNAL: Task 3 heartbeat timeout.", 'process 3 stopped answering'),
    ('JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 4 GiB', None),
])
def test_the_failed_peer_is_read_from_the_runtime_text(text, why):
  assert peer_failure.reason(text) == why


@pytest.mark.parametrize('args,given', [
    (['--verbosity=0'], True), (['-v', '1'], True), (['--v=1'], True),
    (['--config', 'configs/nin.py:smoke'], False), (['--workdir=v'], False)])
def test_any_spelling_of_verbosity_keeps_the_runtime_output_whole(args, given):
  from nin import cli
  assert cli._verbosity_given(args) is given  # Read before flags are parsed: no relay then.
