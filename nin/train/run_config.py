"""A run's saved config: loading it (older runs brought to today's fields once) and
the check that a resumed run is the run the workdir holds.

The file itself (`config.json`, written by `nin.workdir.commit`) belongs to
nin.workdir; what the config means, and whether two describe one network,
belongs here, above the model registry.
"""
import json
import os

import ml_collections
from flax import traverse_util

from nin import registry, workdir as workdir_lib
from nin.errors import ConfigError, WorkdirConflict


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
  base = json.loads(workdir_lib.config_to_json(common.get_base_config()))
  for key, value in _flat(base).items():
    if key not in flat and not key.startswith('model.'):
      flat[key] = _LEGACY_VALUES.get(key, value)
  return traverse_util.unflatten_dict(flat, sep='.')


def from_dict(d: dict) -> ml_collections.ConfigDict:
  """A ConfigDict from a config's JSON form (JSON turns tuples into lists; configs use tuples)."""
  def fix(v):
    if isinstance(v, list):
      return tuple(fix(x) for x in v)
    if isinstance(v, dict):
      return {k: fix(x) for k, x in v.items()}
    return v
  return ml_collections.ConfigDict({k: fix(v) for k, v in d.items()})


def load(workdir) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was started with, in today's fields."""
  d = workdir_lib.read_config(workdir)
  if not isinstance(d, dict) or not {'model', 'dataset', 'optimizer'} <= set(d):
    raise ConfigError(f'{os.path.join(workdir, workdir_lib.CONFIG_FILE)} is not the config '
                      f'of a run of this project')
  return from_dict(upgrade(d))


# Fields that name what a run is; a refusal lists them before any other difference.
_IDENTITY = ('model.name', 'dataset.name', 'seed')


def check(config, workdir, overwrite=False, allow_config_change=False) -> None:
  """Refuses a path that is not a directory, or a workdir that holds a run with another config."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirConflict(f'--workdir {workdir} is a file, not a directory')
  if overwrite or not os.path.exists(os.path.join(workdir, workdir_lib.CONFIG_FILE)):
    return
  saved = upgrade(workdir_lib.read_config(workdir))
  old = _flat(saved)
  new = _flat(json.loads(workdir_lib.config_to_json(config)))
  diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
  if diff and all(k.startswith('model.') for k in diff) and _same_model(saved, config):
    return  # The same network, described in another form (config.json is then rewritten).
  for key in _IDENTITY[:2] if allow_config_change else ():  # No flag makes it the same run.
    if key in diff:
      raise WorkdirConflict(
          f'{workdir} holds a run of {key} {old.get(key)!r}, not {new.get(key)!r}; '
          f'--allow_config_change cannot change {key} (its checkpoints are that run\'s): '
          f'choose another --workdir, or pass --overwrite to delete that run')
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
    old = from_dict(saved).model
    return registry.canonical_model(old) == registry.canonical_model(config.model)
  except (ConfigError, KeyError, TypeError, ValueError, AttributeError):
    return False  # A saved model this code cannot build is not the same model.
