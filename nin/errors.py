"""Every error the project reports to a user; the command-line tools print each as one line.

Exit codes (nin/cli.py): 2 for what the user can fix (a config, data, a workdir),
1 for a non-finite loss, 128+N for a run stopped by signal N after saving.
"""
import signal


class ConfigError(ValueError):
  """A bad value in a config: the message names it and the valid choices."""


class WorkdirConflict(ValueError):
  """The workdir cannot be used as asked (another config, not a directory, ...)."""


class WorkdirBusy(WorkdirConflict):
  """Another train.py holds the workdir."""


class DataError(RuntimeError):
  """A dataset cannot be provided; the message says why and what to do."""


class NonFiniteLoss(RuntimeError):
  """Training stopped at a non-finite loss; the last good checkpoint is kept."""


class Interrupted(Exception):
  """A signal stopped training after a checkpoint was saved."""

  def __init__(self, step, signum):
    super().__init__(f'Interrupted by {signal.Signals(signum).name} at step {step}; '
                     f'checkpoint saved: run the same command again to resume')
    self.step, self.signum = step, signum
