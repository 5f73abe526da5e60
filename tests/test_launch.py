"""nin.launch.sweep --launcher=submitit: one job array, requeue-and-resume, the sbatch script, --status."""
import glob
import os
import signal
import stat
import subprocess
import sys
import time

import runs
from nin.launch import slurm, sweep
from nin import workdir as workdir_lib

TINY = '''
def get_sweep(arg=None):
  runs = [{'group': 'nin', 'seed': s, 'config': 'configs/nin.py:smoke',
           'overrides': {'num_train_steps': 3}} for s in (0,)]
  runs.append({'group': 'broken', 'seed': 0, 'config': 'configs/plain.py:smoke',
               'overrides': {'optimizer.name': 'lion'}})
  return runs
'''


def _sweep(*args, env=None):
  return subprocess.run([sys.executable, '-m', 'nin', 'sweep', *args], cwd=runs.ROOT,
                        env=env or runs.env(), capture_output=True, text=True, timeout=600)


def test_a_sweep_through_submitit_runs_locally_and_status_follows_it(tmp_path):
  (tmp_path / 'tiny.py').write_text(TINY)
  workdir = str(tmp_path / 'sw')
  p = _sweep(str(tmp_path / 'tiny.py'), '--workdir', workdir, '--launcher=submitit',
             '--submitit_cluster=local')
  assert p.returncode == 1, p.stderr[-3000:]  # The broken run failed; the others finished.
  assert 'nin/seed0: job ' in p.stdout and '(local)' in p.stdout
  assert "broken/seed0: failed" in p.stdout and 'Sweep: 1 finished, 1 failed' in p.stdout
  assert runs.final(f'{workdir}/nin/seed0')['step'] == 3
  assert "Unknown optimizer 'lion'" in open(f'{workdir}/broken/seed0/FAILED').read()
  status = _sweep('--workdir', workdir, '--status')
  assert status.returncode == 0, status.stderr
  assert status.stdout.splitlines() == ['nin/seed0: finished', 'broken/seed0: failed',
                                        'Sweep: 1 finished, 1 failed']


def test_an_interrupted_task_is_requeued_and_resumes_at_its_checkpoint(tmp_path):
  # Logging every step: the signal lands at any step, and a stop between two log steps
  # records the mean of its partial interval, which an uninterrupted run does not have.
  args = ['--config', f'{runs.ROOT}/configs/nin.py:smoke', '--config.num_train_steps=50',
          '--config.eval_every_epochs=0.5', '--config.log_every_steps=1']
  straight, requeued = str(tmp_path / 'straight'), str(tmp_path / 'requeued')
  runs.cli('train.py', *args, '--workdir', straight, check=True)
  cmd = [sys.executable, f'{runs.ROOT}/train.py', *args, '--workdir', requeued]
  env = os.environ.copy()
  os.environ.update(runs.env())  # The local executor's tasks inherit this environment.
  try:
    (job,), cluster = slurm.submit([cmd], [requeued], str(tmp_path / 'sw'), runs.ROOT,
                                    slurm.SlurmSpec(time_min=30), cluster='local')
  finally:
    os.environ.clear()
    os.environ.update(env)
  assert cluster == 'local'
  ckpts = os.path.join(requeued, 'checkpoints')
  deadline = time.time() + 180
  while time.time() < deadline and not (os.path.isdir(ckpts) and any(
      d.isdigit() for d in os.listdir(ckpts))):
    time.sleep(0.05)
  # What SLURM sends a task before preempting it or at its time limit (submitit's USR2),
  # to the task process: the parent of the train.py it started.
  os.kill(_parent_of_train_py(requeued), signal.SIGUSR2)
  assert job.result() == 0
  log = job.stdout() + (job.stderr() or '')
  assert 'Interrupted by SIGTERM at step' in log and 'Requeued job' in log, log[-3000:]
  assert 'Resuming from step' in log, log[-3000:]
  assert runs.records(requeued) == runs.records(straight)  # Bitwise, timing aside.
  a, b = runs.final(straight), runs.final(requeued)
  assert (a['step'], a['test_loss'], a['test_accuracy']) == (b['step'], b['test_loss'],
                                                               b['test_accuracy'])


def _parent_of_train_py(workdir):
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        argv = f.read().split(b'\0')
      if b'--workdir' in argv and workdir.encode() in argv and any(
          a.endswith(b'train.py') for a in argv):
        with open(f'/proc/{pid}/status') as f:
          return int(next(l for l in f if l.startswith('PPid:')).split()[1])
    except OSError:
      continue
  raise AssertionError(f'no train.py running in {workdir}')


def test_the_sbatch_script_asks_for_what_the_flags_say(tmp_path):
  """A stand-in `sbatch` records the script instead of submitting it."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  fake = bin_dir / 'sbatch'
  fake.write_text('#!/bin/sh\ncp "$1" "$(dirname "$0")/submitted.sh"\n'
                  'echo "Submitted batch job 4242"\n')
  fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
  (bin_dir / 'srun').write_text('#!/bin/sh\nexit 1\n')  # submitit looks for it; never run.
  (bin_dir / 'srun').chmod(0o755)
  (tmp_path / 'tiny.py').write_text(TINY)
  env = runs.env()
  env['PATH'] = f'{bin_dir}:{env["PATH"]}'
  p = _sweep(str(tmp_path / 'tiny.py'), '--workdir', str(tmp_path / 'sw'), '--launcher=submitit',
             '--submitit_cluster=slurm', '--slurm_partition=gpu', '--slurm_time_min=90',
             '--slurm_gpus_per_run=2', '--slurm_cpus_per_run=8', '--slurm_array_parallelism=1',
             '--slurm_extra=account=nin', env=env)
  assert p.returncode == 0, p.stderr[-3000:]
  assert 'nin/seed0: job 4242_0 (slurm)' in p.stdout and '--status' in p.stdout
  script = (bin_dir / 'submitted.sh').read_text()
  for line in ('#SBATCH --array=0-1%1', '#SBATCH --partition=gpu', '#SBATCH --time=90',
               '#SBATCH --gpus-per-node=2', '#SBATCH --ntasks-per-node=2',
               '#SBATCH --cpus-per-task=4', '#SBATCH --account=nin', '#SBATCH --nodes=1'):
    assert line in script, (line, script)
  assert glob.glob(str(tmp_path / 'sw' / workdir_lib.SUBMITIT_FOLDER / '*'))  # The pickled tasks.


def test_without_submitit_the_launcher_is_one_line(tmp_path, monkeypatch):
  monkeypatch.setattr(slurm, 'submitit', None)
  try:
    slurm.executor(str(tmp_path), slurm.SlurmSpec())
  except sweep.ConfigError as e:
    assert "pip install -e '.[slurm]'" in str(e) and '\n' not in str(e)
  else:
    raise AssertionError('no error without submitit')
