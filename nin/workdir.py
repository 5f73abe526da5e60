"""A run's directory: the one module that knows its files and their layout.

    workdir/
      config.json          the resolved config (`load_config`)
      metrics.jsonl        one record per line (nin.metrics)
      final_metrics.json   the summary, written once training ends (`read_final`)
      preprocess.npz       the input transform fitted on the training images (`transform`)
      checkpoints/         Orbax steps (nin.checkpoint); corrupt_checkpoints/ beside it
      tensorboard/         the same scalars for TensorBoard
      FAILED               left by nin.sweep when the run's command failed

train.py holds an exclusive lock on the directory while it runs (`lock`), so
one workdir has one writer; the processes of a multi-process run are one
writer (process 0 writes, the others only read).
"""
import fcntl
import json
import os
import shutil

import ml_collections
from flax import traverse_util

from nin import preprocess, registry
from nin.errors import ConfigError, WorkdirBusy, WorkdirConflict, storage_problem

CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.jsonl'
FINAL_FILE = 'final_metrics.json'
FAILED_FILE = 'FAILED'
CHECKPOINTS = 'checkpoints'
CORRUPT_CHECKPOINTS = 'corrupt_checkpoints'
TENSORBOARD = 'tensorboard'
PREPROCESS_FILE = 'preprocess.npz'


def config_to_json(config) -> str:
  return json.dumps(json.loads(config.to_json()), indent=1, sort_keys=True)


def _flat(d) -> dict:
  return traverse_util.flatten_dict(d, sep='.')


# Fields whose absence from an older run's config meant something else than today's
# default: runs saved before the validation split trained on every training example.
_LEGACY_VALUES = {'dataset.validation_examples': 0}


def upgrade(saved: dict) -> dict:
  """A saved config with the fields added since it was written, at their defaults.

  Older runs load, resume and compare as if they had been saved today: a field
  they lack takes its value in `_LEGACY_VALUES`, else the base default of
  configs/common.py (every field added since behaves as before at its default).
  Model fields are left alone: a model fills in its own defaults.
  """
  from configs import common  # Configs are data, read where needed.
  flat = _flat(saved)
  for key, value in _flat(json.loads(config_to_json(common.get_base_config()))).items():
    if key not in flat and not key.startswith('model.'):
      flat[key] = _LEGACY_VALUES.get(key, value)
  return traverse_util.unflatten_dict(flat, sep='.')


# Fields that name what a run is; a refusal lists them before any other difference.
_IDENTITY = ('model.name', 'dataset.name', 'seed')


def check(config, workdir, overwrite=False, allow_config_change=False) -> None:
  """Refuses a path that is not a directory, or a workdir that holds a run with another config."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirConflict(f'--workdir {workdir} is a file, not a directory')
  path = os.path.join(workdir, CONFIG_FILE)
  if overwrite or not os.path.exists(path):
    return
  saved = upgrade(_read_json(path, 'its config'))
  old = _flat(saved)
  new = _flat(json.loads(config_to_json(config)))
  diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
  if diff and all(k.startswith('model.') for k in diff) and _same_model(saved, config):
    return  # The same network, described in another form (config.json is then rewritten).
  if diff and not allow_config_change:
    # The telling differences first: a field both configs have (e.g. model.name) says
    # more than the fields one model has and the other lacks.
    diff.sort(key=lambda k: (k not in _IDENTITY, k not in old or k not in new, k))
    show = lambda d, k: repr(d[k]) if k in d else '(absent)'
    shown = ', '.join(f'{k}: {show(old, k)} -> {show(new, k)}' for k in diff[:4])
    more = f' (+{len(diff) - 4} more)' if len(diff) > 4 else ''
    raise WorkdirConflict(
        f'{workdir} holds a run with a different config ({shown}{more}); pass --overwrite to '
        f'start afresh there or --allow_config_change to resume it with the new config')


def _same_model(saved: dict, config) -> bool:
  try:
    old = _config_from_dict(saved).model
    return registry.canonical_model(old) == registry.canonical_model(config.model)
  except (ConfigError, KeyError, TypeError, ValueError, AttributeError):
    return False  # A saved model this code cannot build is not the same model.


def lock(workdir):
  """Creates `workdir` and takes its exclusive lock; returns the lock (close it to release).

  `flock` locks die with their process, so a crashed or SIGKILLed run leaves
  none behind.
  """
  try:
    os.makedirs(workdir, exist_ok=True)
    fd = os.open(workdir, os.O_RDONLY)
  except OSError as e:
    raise WorkdirConflict(f'Cannot use --workdir {workdir}: {e.strerror}') from None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    raise WorkdirBusy(f'{workdir} is in use by another train.py; wait for it to finish, '
                      f'or choose another --workdir') from None
  return fd


def prepare(config, workdir, overwrite) -> int:
  """Locks the workdir, empties it if asked, and writes the config; returns the lock."""
  fd = lock(workdir)
  try:
    if overwrite:  # Keep the locked directory itself.
      for name in os.listdir(workdir):
        path = os.path.join(workdir, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
    write_atomically(os.path.join(workdir, CONFIG_FILE), config_to_json(config))
  except OSError as e:  # A read-only or full disk: refused before anything ran.
    os.close(fd)
    raise WorkdirConflict(f'Cannot write to --workdir {workdir}: '
                          f'{storage_problem(e) or e.strerror}') from None
  return fd


def write_atomically(path: str, text: str) -> None:
  """Writes a file so that a reader sees the old content or the new, never a part."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def _read_json(path, what):
  try:
    with open(path) as f:
      return json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise ConfigError(f'{path} ({what}) is not valid JSON ({e}); it is damaged or not a '
                      f'file of this project') from None


def load_config(workdir) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was started with."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{workdir} holds no run ({CONFIG_FILE} is missing)')
  d = _read_json(path, 'the run\'s config')
  if not isinstance(d, dict) or not {'model', 'dataset', 'optimizer'} <= set(d):
    raise ConfigError(f'{path} is not the config of a run of this project')
  return _config_from_dict(upgrade(d))


def _config_from_dict(d):
  def fix(v):  # JSON turns tuples into lists; configs use tuples.
    if isinstance(v, list):
      return tuple(fix(x) for x in v)
    if isinstance(v, dict):
      return {k: fix(x) for k, x in v.items()}
    return v
  return ml_collections.ConfigDict({k: fix(v) for k, v in d.items()})


def read_final(workdir):
  """The run's final summary, or None if it has none (or only a damaged one)."""
  try:
    with open(os.path.join(workdir, FINAL_FILE)) as f:
      final = json.load(f)
  except (OSError, ValueError, UnicodeDecodeError):
    return None
  return final if isinstance(final, dict) and 'step' in final else None


def mark_failed(run_dir: str, code: int, stderr: str) -> None:
  """The FAILED marker a launcher leaves when a run's train.py exits with an error."""
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, FAILED_FILE), 'w') as f:
    f.write(f'exit code {code}\n{stderr[-2000:]}')


def write_final(workdir, final: dict) -> None:
  write_atomically(os.path.join(workdir, FINAL_FILE), json.dumps(final, indent=1))
  try:  # An earlier attempt's FAILED marker (nin.sweep) no longer says anything true.
    os.remove(os.path.join(workdir, FAILED_FILE))
  except FileNotFoundError:
    pass


def transform(config, workdir: str, dataset, save: bool = False) -> preprocess.Transform:
  """The run's input transform: the saved one, else fitted on `dataset`'s training images.

  With `save`, a freshly fitted transform is written to the workdir (process 0 of
  train.py), so that a resumed run, eval.py and notebooks apply exactly it.
  """
  path = os.path.join(workdir, PREPROCESS_FILE)
  kind = config.dataset.preprocess  # Older runs' configs are upgraded on load (`upgrade`).
  if os.path.exists(path):
    saved = preprocess.Transform.load(path)
    if saved.kind == kind:
      return saved
  fitted = preprocess.fit(kind, dataset.train_images,
                          config.dataset.zca_epsilon)
  if save:
    tmp = path + '.tmp'
    fitted.save(tmp)
    os.replace(tmp, path)
  return fitted


def status(run_dir: str) -> str:
  """'finished', 'running' (a train.py holds its lock), 'failed', 'incomplete' (started,
  not done) or 'missing'. A FAILED marker left from an earlier attempt does not outlive
  the run's finishing."""
  if read_final(run_dir) is not None:
    return 'finished'
  if busy(run_dir):
    return 'running'
  if os.path.exists(os.path.join(run_dir, FAILED_FILE)):
    return 'failed'
  if os.path.exists(os.path.join(run_dir, CONFIG_FILE)):
    return 'incomplete'
  return 'missing'


def busy(run_dir: str) -> bool:
  """Whether a process holds the run's lock now (a train.py running there, on this host
  or, on a shared file system that supports flock, another)."""
  try:
    fd = os.open(run_dir, os.O_RDONLY)
  except OSError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return False
  except BlockingIOError:
    return True
  finally:
    os.close(fd)  # Closing releases the probe's own lock, if it took one.
