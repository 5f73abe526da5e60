"""Submits train.py commands as one submitit job array (SLURM, or locally without it).

  python -m nin sweep configs/sweeps/questions.py --workdir runs/q --launcher=submitit \
      --slurm_partition=gpu --slurm_gpus_per_run=1 --slurm_time_min=240
  python -m nin sweep --workdir runs/q --status

nin/launch/sweep.py owns a sweep's runs and hands this module their
`train.py` commands (this interpreter, from the repository root), so a task is
the run the local launcher would start; this module knows nothing of sweeps. A task that SLURM preempts or times out gets submitit's signal;
`RunTask.checkpoint` passes SIGTERM to its train.py, which saves a checkpoint and
stops, and submitit requeues the task, whose train.py resumes from that
checkpoint. A run of several GPUs or nodes is one task per process (one per
GPU), so that `jax.distributed.initialize` reads its coordinator and ranks from
SLURM's variables. Where SLURM is absent (no `sbatch`), submitit's local
executor runs the tasks on this machine, and the sweep waits for them.

submitit is an optional dependency: `pip install -e '.[slurm]'`.
"""
import collections
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from nin import workdir as workdir_lib
from nin.errors import ConfigError
from nin.runtime import children



@dataclasses.dataclass
class SlurmSpec:
  """What every task of the array asks for (flags of nin.launch.sweep)."""
  partition: str = ''
  time_min: int = 240
  gpus_per_run: int = 0
  cpus_per_run: int = 2
  nodes_per_run: int = 1
  array_parallelism: int = 16
  extra: dict = dataclasses.field(default_factory=dict)  # More sbatch options.


try:
  import submitit
  _Checkpointable = submitit.helpers.Checkpointable
except ImportError:  # The local launcher needs none of it.
  submitit, _Checkpointable = None, object


def _require_submitit():
  if submitit is None:
    raise ConfigError("--launcher=submitit needs submitit: pip install -e '.[slurm]'")


class RunTask(_Checkpointable):
  """One run's train.py; on preemption or time-out it saves, stops and is requeued.

  `owner`: on submitit's local executor, the sweep process that waits for the task
  (`children.identity`). Its controller is meant to outlive the sweep, so the task
  watches the sweep and stops its train.py (which saves) when the sweep is gone, however
  it died. On SLURM there is no owner: the sweep submits and exits.
  """

  def __init__(self, root: str, owner=None):
    self.root = root
    self.owner = owner
    self._proc = None
    self._orphaned = False

  def __call__(self, cmd, run_dir):
    self._proc = subprocess.Popen(cmd, cwd=self.root, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=children.die_with_parent(signal.SIGTERM))
    # A thread copies train.py's stderr into the task's log and keeps its end for the
    # FAILED marker; the main thread stays free for submitit's signal handler.
    tail = collections.deque(maxlen=40)
    self._copier = threading.Thread(target=_copy, args=(self._proc.stderr, tail), daemon=True)
    self._copier.start()
    if self.owner is not None:
      threading.Thread(target=self._watch_owner, daemon=True).start()
    code = self._wait()
    self._copier.join()
    if self._orphaned:  # Saved and stopped: it resumes when the sweep is started again.
      raise RuntimeError(f'{run_dir}: the sweep that started it is gone; train.py saved a '
                         f'checkpoint and stopped')
    if code != 0:  # Marked where nin.launch.sweep --status looks, as the local launcher does.
      workdir_lib.mark_failed(run_dir, code, ''.join(tail))
      raise RuntimeError(f'{run_dir}: train.py exited with {code}: '
                         f'{tail[-1].strip() if tail else ""}')
    return code

  def checkpoint(self, cmd, run_dir):
    """submitit's hook on preemption or time-out: the run saves, then the task is requeued."""
    if self._proc is not None and self._proc.poll() is None:
      self._proc.send_signal(signal.SIGTERM)  # train.py saves a checkpoint and stops.
      self._wait()
      self._copier.join(timeout=10)  # Its last lines, into the log.
    return submitit.helpers.DelayedSubmission(RunTask(self.root, self.owner), cmd, run_dir)

  def _watch_owner(self):
    while self._proc.poll() is None:
      if not children.alive(self.owner):
        self._orphaned = True
        self._proc.send_signal(signal.SIGTERM)  # train.py saves a checkpoint and stops.
        return
      time.sleep(0.5)

  def _wait(self):
    # Not Popen.wait: this runs both in the task and in submitit's signal handler, which
    # interrupts it, and Popen.wait holds a lock that the handler's wait would wait for.
    while self._proc.poll() is None:
      time.sleep(0.2)
    return self._proc.returncode

  def __getstate__(self):  # A requeued task starts its own process.
    return {'root': self.root, 'owner': self.owner, '_proc': None, '_orphaned': False}


def _copy(stream, tail):
  for line in stream:
    sys.stderr.write(line)
    sys.stderr.flush()
    tail.append(line)


def executor(folder: str, spec: SlurmSpec, cluster: str = ''):
  """submitit's AutoExecutor for the array: SLURM where `sbatch` exists, else local."""
  _require_submitit()
  try:
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster or None)
  except RuntimeError as e:  # e.g. SLURM asked for where it has no srun.
    raise ConfigError(f'submitit cannot use {cluster or "a cluster"} here: {e}') from None
  gpus = spec.gpus_per_run // spec.nodes_per_run if spec.gpus_per_run else 0
  tasks_per_node = max(1, gpus)  # One process per GPU: jax.distributed's layout.
  params = dict(timeout_min=spec.time_min, nodes=spec.nodes_per_run,
                tasks_per_node=tasks_per_node,
                cpus_per_task=max(1, spec.cpus_per_run // (tasks_per_node * spec.nodes_per_run)),
                name='nin_sweep')
  if gpus:
    params['gpus_per_node'] = gpus
  if ex.cluster == 'slurm':
    params['slurm_array_parallelism'] = spec.array_parallelism
    if spec.partition:
      params['slurm_partition'] = spec.partition
    if spec.extra:
      params['slurm_additional_parameters'] = dict(spec.extra)
  ex.update_parameters(**params)
  return ex


def submit(commands: list, run_dirs: list, workdir: str, root: str, spec: SlurmSpec,
           cluster: str = ''):
  """Submits one task per command as one job array; returns (submitit's jobs, cluster name)."""
  ex = executor(os.path.join(os.path.abspath(workdir), workdir_lib.SUBMITIT_FOLDER, '%j'), spec, cluster)
  owner = children.identity() if ex.cluster == 'local' else None  # This process waits.
  return ex.map_array(RunTask(root, owner), commands, run_dirs), ex.cluster
