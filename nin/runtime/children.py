"""Child processes that stop when their parent dies, whatever killed it.

A sweep's train.py, a submitit task's train.py and a device check's parts
are children that would otherwise train on as orphans under PID 1: SIGKILL
gives the parent no chance to stop them. Linux's parent-death signal does
(`die_with_parent`, passed as `preexec_fn`). Where the owner is not the
direct parent (submitit's local executor starts each task from a controller
process meant to outlive the sweep), the task watches its owner instead
(`identity`, `alive`).
"""
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM):
  """A `preexec_fn` that has the kernel send the child `signum` when its parent dies
  (Linux; elsewhere None, and the child outlives a killed parent)."""
  if sys.platform != 'linux':
    return None

  def preexec():
    try:
      import ctypes
      ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum))
    except (OSError, AttributeError):
      pass
  return preexec


def identity(pid: int = 0):
  """(pid, start time) of a process (default: this one): a pid the system reuses after the
  process ended names another start time. None where /proc cannot tell."""
  pid = pid or os.getpid()
  try:
    with open(f'/proc/{pid}/stat') as f:
      # Field 22, counted after the command's parentheses (which may hold spaces).
      return pid, int(f.read().rsplit(')', 1)[1].split()[19])
  except (OSError, IndexError, ValueError):
    return None


def alive(ident) -> bool:
  """Whether the process `identity` named is still running (True when it cannot tell)."""
  if ident is None:
    return True
  now = identity(ident[0])
  if now is None:
    return not os.path.isdir('/proc')  # No /proc: cannot tell; gone from /proc: dead.
  return tuple(now) == tuple(ident)
