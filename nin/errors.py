"""Every error the project reports to a user; the command-line tools print each as one line.

Exit codes (nin/cli.py): 2 for what the user can fix (a config, data, a workdir),
1 for a non-finite loss or a disk that refused a write (full, read-only), 128+N
for a run stopped by signal N after saving.
"""
import errno
import signal

# What a full, read-only, over-quota or forbidden place says, as errno and as text (Orbax
# and TensorStore wrap the OSError in their own exceptions, keeping only its text). EFBIG:
# a file size limit (`ulimit -f`), once the CLIs ignore SIGXFSZ (nin/cli.py).
_STORAGE = {errno.ENOSPC: 'no space left on device', errno.EROFS: 'read-only file system',
            errno.EDQUOT: 'disk quota exceeded', errno.EACCES: 'permission denied',
            errno.EPERM: 'operation not permitted', errno.EFBIG: 'file too large'}


class ConfigError(ValueError):
  """A bad value in a config: the message names it and the valid choices."""


class WorkdirConflict(ValueError):
  """The workdir cannot be used as asked (another config, not a directory, ...)."""


class WorkdirBusy(WorkdirConflict):
  """Another train.py holds the workdir."""


class StorageError(OSError):
  """The workdir's disk refused a write (full, read-only, over quota, not permitted); nothing
  saved is lost."""


def storage_problem(e: BaseException):
  """'no space left on device' (or read-only, over quota) if `e`, or what caused it, says so."""
  while e is not None:
    if isinstance(e, OSError) and e.errno in _STORAGE:
      return _STORAGE[e.errno]
    text = str(e).lower()
    for why in _STORAGE.values():
      if why in text:
        return why
    e = e.__cause__ or e.__context__
  return None


def storage_advice(why: str) -> str:
  """What to do about a `storage_problem`: make room, or make the place writable."""
  if why in (_STORAGE[errno.ENOSPC], _STORAGE[errno.EDQUOT], _STORAGE[errno.EFBIG]):
    return 'make room (or raise the limit)'
  return 'make it writable (or choose another folder)'


class DataError(RuntimeError):
  """A dataset cannot be provided; the message says why and what to do."""


class NonFiniteLoss(RuntimeError):
  """Training stopped at a non-finite loss; the last good checkpoint is kept."""


class Interrupted(Exception):
  """A signal stopped training after a checkpoint was saved."""

  def __init__(self, step, signum, message=None):
    super().__init__(message or f'Interrupted by {signal.Signals(signum).name} at step {step}; '
                     f'checkpoint saved: run the same command again to resume')
    self.step, self.signum = step, signum
