"""A run's directory: the one module that knows its files and their layout.

    workdir/
      config.json          the resolved config (`commit`; nin.train.run_config loads it)
      metrics.jsonl        one record per line (nin.train.metrics)
      final_metrics.json   the summary, written once training ends (`read_final`)
      preprocess.npz       the input transform fitted on the training images (nin.data.preprocess)
      provenance.jsonl     what started the run, a line per start (nin.train.provenance)
      checkpoints/         Orbax steps (nin.train.checkpoint); corrupt_checkpoints/ beside it
      tensorboard/         the same scalars for TensorBoard
      FAILED               left by a launcher when the run's command failed
      eval_<which>[_validation][_tta<n>].json, *_confusion.png   eval.py's results (`eval_stem`)
      class_maps_<which>[_mosaic].png   eval.py --class_maps's figures (`class_maps_file`)

    sweep root/            a sweep's runs in <group>/seed<k>/ (nin.launch.sweep)
      sweep.json           its manifest: the sweep file, its questions and runs
      submitit/            the job array's scripts and logs (nin.launch.slurm)
      report.md, report.json   nin.experiments.report's report (and its figures)

train.py holds an exclusive lock on the directory while it runs (`lock`), so
one workdir has one writer; the processes of a multi-process run are one
writer (process 0 writes, the others only read).
"""
import fcntl
import json
import os
import shutil

from nin.errors import ConfigError, WorkdirBusy, WorkdirConflict, storage_problem

CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.jsonl'
FINAL_FILE = 'final_metrics.json'
FAILED_FILE = 'FAILED'
CHECKPOINTS = 'checkpoints'
CORRUPT_CHECKPOINTS = 'corrupt_checkpoints'
TENSORBOARD = 'tensorboard'
PREPROCESS_FILE = 'preprocess.npz'
PROVENANCE_FILE = 'provenance.jsonl'
SWEEP_FILE = 'sweep.json'
SUBMITIT_FOLDER = 'submitit'
REPORT_FILES = ('report.md', 'report.json')


def class_maps_file(workdir: str, which: str, mosaic: bool = False) -> str:
  """eval.py --class_maps's figure of a checkpoint's class maps (on a mosaic: `mosaic`)."""
  return os.path.join(workdir, f'class_maps_{which}' + ('_mosaic' if mosaic else '') + '.png')


def eval_stem(workdir: str, which: str, split: str, tta: int) -> str:
  """The path, without extension, of eval.py's results for a checkpoint, split and TTA level."""
  return os.path.join(workdir, f'eval_{which}' + ('_validation' if split == 'validation' else '')
                      + (f'_tta{tta}' if tta else ''))


def config_to_json(config) -> str:
  return json.dumps(json.loads(config.to_json()), indent=1, sort_keys=True)


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


class Claim:
  """A workdir locked by train.py before anything is written there (`claim`), then either
  committed to (`commit`: its files written) or released as found (`release`)."""

  def __init__(self, workdir: str, fd: int, created: bool):
    self.workdir, self.fd, self.created = workdir, fd, created


def claim(workdir: str, overwrite: bool) -> Claim:
  """Locks the workdir and checks that train.py may use it; writes nothing but the folder.

  Refused in one line: --overwrite of a folder that holds no run (a sweep's root, or
  anything else: it would delete what is there), and a folder, or a file or folder of a
  run in it, that cannot be written.
  """
  created = not os.path.exists(workdir)
  if overwrite and not created:
    _check_overwritable(workdir)
  fd = lock(workdir)
  try:
    check_writable(workdir, 'the workdir', files=(CONFIG_FILE, METRICS_FILE, FINAL_FILE,
                                                  PROVENANCE_FILE, PREPROCESS_FILE),
                   folders=(CHECKPOINTS, TENSORBOARD))
  except WorkdirConflict:
    release(Claim(workdir, fd, created))
    raise
  return Claim(workdir, fd, created)


def _check_overwritable(workdir: str) -> None:
  names = set(os.listdir(workdir))
  if SWEEP_FILE in names:
    raise WorkdirConflict(f'--overwrite would delete the sweep in {workdir} ({SWEEP_FILE} is '
                          f'there): --overwrite is for one run\'s workdir; name a run of it '
                          f'(<group>/seed<k>) or another --workdir')
  if names and CONFIG_FILE not in names:
    raise WorkdirConflict(f'--overwrite would delete {len(names)} files and folders in '
                          f'{workdir}, which holds no run ({CONFIG_FILE} is missing); choose '
                          f'an empty or new --workdir')


def check_writable(folder: str, what: str, files=(), folders=()) -> None:
  """Refuses in one line (WorkdirConflict) when `folder`, or one of its `files` or
  `folders` that exists, cannot be written: tried, not guessed from permission bits,
  which root and network file systems do not follow."""
  def label(path):
    return f'{path} ({what})' if path == folder else f'{path} (in {what})'
  for path in [folder] + [os.path.join(folder, n) for n in folders]:
    if not os.path.exists(path):
      continue
    if not os.path.isdir(path):
      raise WorkdirConflict(f'{label(path)} is a file, not a folder')
    probe = os.path.join(path, f'.nin-write-test-{os.getpid()}')
    try:
      os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
      os.remove(probe)
    except OSError as e:
      raise WorkdirConflict(f'Cannot write to {label(path)}: '
                            f'{storage_problem(e) or e.strerror}') from None
  for name in files:
    path = os.path.join(folder, name)
    if os.path.isdir(path):
      raise WorkdirConflict(f'{label(path)} is a folder, not a file')
    if os.path.exists(path):
      try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
      except OSError as e:
        raise WorkdirConflict(f'Cannot write to {label(path)}: '
                              f'{storage_problem(e) or e.strerror}') from None


def commit(claim_: Claim, config, overwrite: bool) -> None:
  """Empties the claimed workdir if asked and writes the config: the first change train.py
  makes there, once every check has passed."""
  workdir = claim_.workdir
  try:
    if overwrite:  # Keep the locked directory itself.
      for name in os.listdir(workdir):
        path = os.path.join(workdir, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
    write_atomically(os.path.join(workdir, CONFIG_FILE), config_to_json(config))
  except OSError as e:  # A read-only or full disk: refused before anything ran.
    raise WorkdirConflict(f'Cannot write to --workdir {workdir}: '
                          f'{storage_problem(e) or e.strerror}') from None


def release(claim_: Claim) -> None:
  """Unlocks the workdir; a folder that `claim` created and nothing filled is removed, so
  that a refused run leaves no trace."""
  os.close(claim_.fd)
  if claim_.created:
    try:
      os.rmdir(claim_.workdir)  # Only if empty.
    except OSError:
      pass


def write_atomically(path: str, text) -> None:
  """Writes a file so that a reader sees the old content or the new, never a part.
  `text`: a string, or fn(binary file) that writes the content."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w' if isinstance(text, str) else 'wb') as f:
    f.write(text) if isinstance(text, str) else text(f)
  os.replace(tmp, path)


def append_line(workdir: str, name: str, record: dict) -> None:
  """Adds one JSON record as a line to the run's file `name` (a *_FILE above)."""
  with open(os.path.join(workdir, name), 'a') as f:
    f.write(json.dumps(record) + '\n')


def read_lines(workdir: str, name: str) -> list:
  """The JSON records of the run's line file `name`; [] when there is none."""
  path = os.path.join(workdir, name)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _read_json(path, what):
  try:
    with open(path) as f:
      return json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise ConfigError(f'{path} ({what}) is not valid JSON ({e}); it is damaged or not a '
                      f'file of this project') from None


def read_config(workdir) -> dict:
  """The saved config as its JSON dict (nin.train.run_config.load gives it as a config)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{workdir} holds no run ({CONFIG_FILE} is missing)')
  return _read_json(path, 'the run\'s config')


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


def clear_failed(run_dir: str) -> None:
  """Removes an earlier attempt's FAILED marker, which no longer says anything true."""
  try:
    os.remove(os.path.join(run_dir, FAILED_FILE))
  except FileNotFoundError:
    pass


def write_final(workdir, final: dict) -> None:
  write_atomically(os.path.join(workdir, FINAL_FILE), json.dumps(final, indent=1))
  clear_failed(workdir)


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
