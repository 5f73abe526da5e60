"""Errors a user can fix; the command-line tools print them as one line and exit 2."""


class ConfigError(ValueError):
  """A bad value in a config: the message names it and the valid choices."""


class WorkdirConflict(ValueError):
  """The workdir cannot be used as asked (another config, not a directory, ...)."""


class WorkdirBusy(WorkdirConflict):
  """Another train.py holds the workdir."""
