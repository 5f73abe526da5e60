"""What produced a run: one line in <workdir>/provenance.jsonl per process start.

Each line holds the UTC time, the command line, the host, Python, the versions
of the libraries that decide the numbers, the devices, and the project's git
commit (with whether the work tree had uncommitted changes), so that a figure
read from a run can be tied to the code and versions behind it. A resumed run
appends a line: the run's steps may come from several starts.
"""
import datetime
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata

from nin import workdir as workdir_lib

LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-datasets',
             'ml-collections', 'numpy')
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # The repository


def _version(name):
  try:
    return metadata.version(name)
  except metadata.PackageNotFoundError:
    return None


def git_state(root: str = _ROOT) -> dict:
  """{'commit', 'dirty'} of the checkout holding this code; Nones outside a git checkout."""
  def git(*args):
    return subprocess.run(['git', '-C', root, *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()
  try:
    commit = git('rev-parse', 'HEAD')
    dirty = bool(git('status', '--porcelain', '--untracked-files=no'))
  except (OSError, subprocess.SubprocessError):
    return {'commit': None, 'dirty': None}
  return {'commit': commit, 'dirty': dirty}


def collect() -> dict:
  import jax
  return {
      'time': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'argv': list(sys.argv),
      'host': socket.gethostname(),
      'python': platform.python_version(),
      'platform': platform.platform(),
      'versions': {name: _version(name) for name in LIBRARIES},
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
      'processes': jax.process_count(),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      **git_state(),
  }


def append(workdir: str) -> dict:
  """Adds this process start's line to the run's provenance file; returns it."""
  entry = collect()
  workdir_lib.append_line(workdir, workdir_lib.PROVENANCE_FILE, entry)
  return entry


def read(workdir: str) -> list:
  return workdir_lib.read_lines(workdir, workdir_lib.PROVENANCE_FILE)
