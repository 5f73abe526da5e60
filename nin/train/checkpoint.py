"""Orbax checkpoints in `workdir/checkpoints`: the last N and the best, written async.

"Best" means the highest validation accuracy (`BEST_METRIC`); the test split
never chooses a checkpoint. A run without a validation split keeps the last N.

Orbax writes each checkpoint to a temporary folder and renames it when
complete, so a run killed mid-write leaves the previous checkpoints intact.
A checkpoint that still fails to restore (a damaged disk, a partial copy) is
moved to `workdir/corrupt_checkpoints/` and the previous one is used instead,
with a warning. A checkpoint of another network (arrays of other shapes) is no
damage: restoring into it is refused in one line and nothing moves. A save that the disk refuses (full, read-only) raises
`StorageError` in one line, as does any other failed save, naming its step; the
checkpoints already complete stay as they are, and the manager's threads are
closed, so the process exits.

Readers (eval.py, notebooks) use `complete_steps`, `best_step`, `fits` and
`read` instead of a `Checkpointer`: they look only at finished steps, change
nothing in the workdir, and can run beside the train.py that writes it. Not a
read-only `CheckpointManager` either: opening one reads every step's metadata
and scores, so one damaged step, or a step the running train.py deletes
meanwhile, fails the whole open. Readers take each finalized step alone
(Orbax's step listing), read its scores with Orbax's JSON handler, as the
manager does, and choose the best as its BestN policy does (`best_record`).
"""
import contextlib
import json
import os
import shutil
import time

import jax
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint import checkpoint_managers as policies

from nin import workdir as workdir_lib
from nin.errors import StorageError, WorkdirConflict, storage_advice, storage_problem

BEST_METRIC = 'val_accuracy'


# Orbax's names for a step's parts: the state's item, the metrics' item, and the
# suffix of a step still being written (public in orbax.checkpoint).
_STATE = ocp.checkpoint_manager.DEFAULT_ITEM_NAME
_METRICS = ocp.checkpoint_manager.METRIC_ITEM_NAME
_TMP_SUFFIX = ocp.path.step.TMP_DIR_SUFFIX
# The one file Orbax has no public name for: the step metadata that every manager reads
# when it opens a directory. A damaged copy makes the whole directory unopenable, so it
# is checked here, before Orbax opens it.
_STEP_METADATA = '_CHECKPOINT_METADATA'


def _damage(step_dir: str):
  """Why a finalized step directory is not a complete checkpoint of this project, or None.

  Orbax renames a checkpoint into place only once it is written, so a step
  directory without its metadata or its state is damaged or foreign.
  """
  if not os.path.isfile(os.path.join(step_dir, _STEP_METADATA)):
    return 'no checkpoint metadata'
  state = os.path.join(step_dir, _STATE)
  if not os.path.isdir(state) or not os.listdir(state):
    return 'no saved state'
  try:
    with open(os.path.join(step_dir, _STEP_METADATA)) as f:
      json.load(f)
    if os.path.exists(os.path.join(step_dir, _METRICS)):
      _metrics(step_dir)
  except Exception:  # Orbax raises several types for a damaged file.
    return 'damaged metadata'
  return None


def _metrics(step_dir: str) -> dict:
  """The validation scores saved with a step, read as a CheckpointManager reads them."""
  handler = ocp.JsonCheckpointHandler(filename=_METRICS)
  with contextlib.closing(ocp.Checkpointer(handler)) as reader:
    return reader.restore(os.path.join(step_dir, _METRICS))


def _best_metric(metrics):
  return metrics[BEST_METRIC]


def best_record(evals):
  """The eval record of the best checkpoint: the highest validation accuracy, and on a
  tie the later step, as Orbax's BestN and `best_step` choose (a stable ascending sort,
  last wins). None when there are no records."""
  return max(evals, key=lambda r: (r[BEST_METRIC], r['step'])) if evals else None


def _step_dir(workdir: str, step: int) -> str:
  return os.path.join(workdir, workdir_lib.CHECKPOINTS, str(step))


def finalized_steps(workdir: str) -> list:
  """The steps Orbax has renamed into place, complete or not, oldest first."""
  directory = os.path.join(workdir, workdir_lib.CHECKPOINTS)
  return sorted(ocp.path.step.checkpoint_steps(directory)) if os.path.isdir(directory) else []


def complete_steps(workdir: str) -> list:
  """The steps with a complete checkpoint, oldest first. Reads only: a step that a running
  train.py is writing (a temporary folder, or just renamed and its metadata not yet
  written) or deleting (its metadata gone) is not listed."""
  return [step for step in finalized_steps(workdir)
          if _damage(_step_dir(workdir, step)) is None]


def best_step(workdir: str, steps=None):
  """The complete step that a Checkpointer calls best (`best_record`), or None if no step
  has a validation score."""
  scored = []
  for step in complete_steps(workdir) if steps is None else steps:
    try:
      scored.append({'step': step,
                     BEST_METRIC: float(_metrics(_step_dir(workdir, step))[BEST_METRIC])})
    except Exception:  # No score, or the step just went (Orbax raises several types).
      continue
  best = best_record(scored)
  return best['step'] if best else None


def _abstract(target_state):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)


def fits(workdir: str, step: int, target_state) -> bool:
  """Whether the arrays saved at `step` have the shapes of `target_state`'s.

  Checked from the saved metadata before restoring: a restore into another
  architecture fails deep inside Orbax's asynchronous reads.
  """
  return _saved_shapes(workdir, step) == _shapes(jax.tree.leaves(target_state))


def _shapes(leaves) -> list:
  return sorted(tuple(x.shape) for x in leaves if hasattr(x, 'shape'))


def _saved_shapes(workdir: str, step: int) -> list:
  """The shapes of the arrays saved at `step`, from its metadata ([] when unreadable)."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # Orbax warns that the item has no step metadata.
  try:
    with contextlib.closing(ocp.StandardCheckpointer()) as reader:
      metadata = reader.metadata(os.path.join(_step_dir(workdir, step), _STATE))
  finally:
    logging.set_verbosity(verbosity)
  return _shapes(jax.tree.leaves(getattr(metadata, 'item_metadata', metadata)))


def refuse_another_tree(workdir: str, target_state) -> None:
  """Raises WorkdirConflict when the latest complete checkpoint holds arrays of other shapes
  than `target_state`'s: another network or optimizer, which is no damage (the
  checkpoint stays where it is) and no run to resume into this one."""
  steps = complete_steps(workdir)
  if not steps:
    return
  try:
    saved = _saved_shapes(workdir, steps[-1])
  except Exception:  # Orbax raises several types for damaged metadata.
    saved = []
  if not saved:  # Unreadable metadata is damage: `Checkpointer.restore` sets it aside.
    return
  if saved != _shapes(jax.tree.leaves(target_state)):
    raise WorkdirConflict(
        f'The checkpoints in {workdir} (latest: step {steps[-1]}) hold another network\'s or '
        f'optimizer\'s arrays than this config builds; nothing was changed there. '
        f'--allow_config_change cannot change the parameters\' shapes: choose another '
        f'--workdir, or pass --overwrite to delete that run')


def read(workdir: str, step: int, target_state):
  """The state saved at `step`, in the structure and shardings of `target_state`."""
  with contextlib.closing(ocp.StandardCheckpointer()) as reader:
    return reader.restore(os.path.join(_step_dir(workdir, step), _STATE),
                          _abstract(target_state))


class Checkpointer:

  def __init__(self, workdir: str, keep: int = 3, keep_best: bool = True):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, workdir_lib.CHECKPOINTS)
    policy = policies.LatestN(n=keep)
    best = {}
    if keep_best:
      policy = policies.AnyPreservationPolicy([
          policy,
          policies.BestN(get_metric_fn=_best_metric, reverse=False, n=1,
                         keep_checkpoints_without_metrics=False),
      ])
      best = dict(best_fn=_best_metric, best_mode='max')
    options = ocp.CheckpointManagerOptions(preservation_policy=policy,
                                           enable_async_checkpointing=True, **best)
    self.keeps_best = keep_best
    self._refused = None  # The StorageError of a save the disk refused.
    self._saving = None   # The step of the latest save started.
    self._manager = self._open(options)

  def _open(self, options):
    """Opens the manager, first setting aside incomplete or damaged step directories.

    Orbax reads every step's metadata when it opens a directory, so one damaged
    or foreign step would otherwise make the whole run unrecoverable.
    """
    if os.path.isdir(self.directory):
      for name in sorted(os.listdir(self.directory)):
        step_dir = os.path.join(self.directory, name)
        why = _damage(step_dir) if name.isdigit() else None
        if why:
          self._warn(f'Checkpoint at step {name} is unreadable ({why}); setting it aside')
          self._set_aside(int(name), reopen=False)
    self._options = options
    return ocp.CheckpointManager(self.directory, options=options)

  @staticmethod
  def _warn(msg):
    logging.warning(msg)
    print(f'WARNING: {msg}', flush=True)

  def steps(self):
    return list(self._manager.all_steps())

  def best_step(self):
    """Orbax's own choice of best step (readers use the module's `best_step`, its twin)."""
    return self._manager.best_step() if self.keeps_best else None

  def save(self, step: int, state, metrics=None) -> None:
    """Starts an asynchronous save; `wait()` or the next save completes it."""
    metrics = {k: float(v) for k, v in (metrics or {}).items()} or None
    self.wait()  # The previous save's error, if any, is reported with its own step.
    self._saving = step
    with self._refusal():
      self._manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics, force=True)

  def wait(self) -> None:
    if self._refused is not None:  # Said once: the manager is not trusted after a refusal.
      raise self._refused
    with self._refusal():
      self._manager.wait_until_finished()

  @contextlib.contextmanager
  def _refusal(self):
    """Turns any failed write (here or in an earlier asynchronous save) into one
    StorageError naming its step, and removes the partial step so that its space is free.
    A disk that refuses (full, read-only, not permitted) is named as such; any other error
    by its type and first line (--verbosity shows the whole traceback)."""
    try:
      yield
    except Exception as e:  # Orbax and TensorStore wrap the OSError in several types.
      why = storage_problem(e)
      advice = 'run the same command again'
      if why is None:
        why = f'{type(e).__name__}: {(str(e).splitlines() or [""])[0][:200]}'
      else:
        advice = f'{storage_advice(why)} and run the same command again'
      self._remove_partial_steps()
      kept = complete_steps(self.workdir)  # The failed manager's own list is stale.
      self._refused = StorageError(
          f'Cannot write the checkpoint of step {self._saving} in {self.directory}: {why}. '
          f'The complete checkpoints are kept '
          f'({f"the latest: step {max(kept)}" if kept else "none yet"}); {advice} to resume')
      self._refused.__cause__ = e  # For --verbosity's traceback.
      raise self._refused from e

  def _remove_partial_steps(self) -> None:
    """Removes the temporary folders of refused saves, so that their space is free.

    Orbax's writer threads may still be finishing when the refusal is raised (and
    TensorStore creates the folders it writes into), so `close` removes them again
    once every write has stopped.
    """
    names = os.listdir(self.directory) if os.path.isdir(self.directory) else []
    for name in names if jax.process_index() == 0 else ():
      if name.endswith(_TMP_SUFFIX):
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def restore(self, target_state, step=None):
    """Restores `step` (default: the latest readable one) into the target's structure.

    Returns (state, step), or (None, None) when there is no checkpoint. An
    unreadable latest checkpoint is moved aside and the one before it is tried.
    """
    refuse_another_tree(self.workdir, target_state)  # Not damage: nothing is set aside.
    abstract = _abstract(target_state)
    candidates = [step] if step is not None else sorted(self.steps(), reverse=True)
    for i, s in enumerate(candidates):
      try:
        return self._manager.restore(s, args=ocp.args.StandardRestore(abstract)), s
      except Exception as e:  # Orbax raises many types for damaged files.
        if step is not None:
          raise
        reason = f'{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}'
        msg = f'Checkpoint at step {s} is unreadable ({reason}); '
        msg += (f'falling back to step {candidates[i + 1]}' if i + 1 < len(candidates)
                else 'no earlier checkpoint: starting from scratch')
        self._warn(msg)
        self._set_aside(s)
    return None, None

  def _set_aside(self, step: int, reopen: bool = True) -> None:
    """Moves one step to corrupt_checkpoints/; the others stay where they are."""
    if jax.process_index() == 0:
      dest = os.path.join(self.workdir, workdir_lib.CORRUPT_CHECKPOINTS,
                        f'{step}-{int(time.time())}')
      os.makedirs(os.path.dirname(dest), exist_ok=True)
      shutil.move(os.path.join(self.directory, str(step)), dest)
    if reopen:  # A manager that failed once is not to be trusted: open a fresh one.
      self._manager.close()
      self._manager = self._open(self._options)

  def close(self) -> None:
    """Waits for the last save, then closes the manager and its threads, whatever failed:
    a thread left running would keep the process from exiting."""
    reported = self._refused is not None
    try:
      self.wait()
    except StorageError:
      if not reported:
        raise
    finally:
      try:
        self._manager.close()
      except Exception:  # After a failed save, closing fails the same way: already said.
        if self._refused is None:
          raise
      finally:
        if self._refused is not None:
          self._remove_partial_steps()
