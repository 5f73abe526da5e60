r"""A sweep's finished runs as a folder to commit: the files its report reads, and the report.

  python -m nin publish runs/questions_cpu docs/compare_cifar_cpu/questions
  python -m nin publish runs/questions_ladder docs/compare_cifar_cpu/ladder \
      --sweep configs/sweeps/questions.py:ladder --override dataset.manual_dir=$PWD/CIFAR

Each finished run keeps its config.json, metrics.jsonl, final_metrics.json and
provenance.jsonl (kilobytes; checkpoints and TensorBoard files stay behind). Every
path under a --root (default: this folder, the repository) is written relative to
it, so the folder names no machine's layout and re-renders anywhere
(tests/test_report.py re-renders every committed one). A path left absolute
stops the command with one line naming it, before anything is written.

Unfinished runs stay out, and the sweep's manifest still lists them, so the report
says how many seeds each group has so far. The manifest is the source's sweep.json
(written by nin.launch.sweep); runs started by hand from `nin.launch.sweep --dry_run` have none,
and --sweep with the same --override flags writes it. The new folder replaces
DST only once it is complete: an error leaves DST as it was. It is built in a
hidden folder beside DST, removed at the end. Nothing else is deleted: DST must
be new or an earlier publication of the same sweep (never the source, a folder
around it or inside it, a file, or a folder holding anything else), or the
command stops in one line before writing.
"""
import json
import os
import re
import shutil
import tempfile

from absl import flags

from nin import errors
from nin.experiments import report
from nin.launch import sweep
from nin import workdir as workdir_lib

RUN_FILES = (workdir_lib.CONFIG_FILE, workdir_lib.METRICS_FILE, workdir_lib.FINAL_FILE,
             workdir_lib.PROVENANCE_FILE)
# An absolute path inside a JSON string or a flag's value ('"/a/b', '=/a/b', ' /a/b').
_ABSOLUTE = re.compile(r'(?:^|(?<=["=\' ]))/[\w.+-]+(?:/[\w.+-]+)+')


def relative(text: str, roots) -> str:
  """`text` with every path under one of `roots` written relative to it (longest root first,
  so that a root inside another wins); a root itself becomes '.'."""
  for root in sorted((os.path.abspath(r) for r in roots), key=len, reverse=True):
    start = r'(?<![\w./+-])' + re.escape(root)  # Where a path starts, not inside a longer one.
    text = re.sub(start + '/', '', text)
    text = re.sub(start + r'(?![\w./+-])', '.', text)
  return text


def finished_runs(src: str) -> list:
  """'group/seedK' of every run in `src` that wrote its final metrics, in order."""
  return sorted(os.path.relpath(d, src) for d, _, files in os.walk(src)
                if workdir_lib.FINAL_FILE in files)


def _inside(path: str, folder: str) -> bool:
  return os.path.commonpath([path, folder]) == folder


def check_destination(src: str, dst: str, sweep_spec: str) -> None:
  """Refuses, in one line, a destination whose replacing would delete anything but an
  earlier publication of the same sweep: the source itself, a folder that contains it or
  lies inside it, a file, or an existing folder that is not such a publication."""
  s, d = os.path.realpath(src), os.path.realpath(dst)
  if _inside(d, s) or _inside(s, d):
    where = 'is' if s == d else 'lies inside' if _inside(d, s) else 'contains'
    raise errors.WorkdirConflict(f'The destination {dst} {where} the sweep folder {src}; '
                                 f'publish into a folder of its own (e.g. docs/<name>)')
  if not os.path.lexists(dst):
    return
  if not os.path.isdir(dst) or os.path.islink(dst):
    raise errors.WorkdirConflict(f'The destination {dst} exists and is not a folder; '
                                 f'nothing was written: choose a new folder')
  try:
    earlier = sweep.read_manifest(dst)
  except errors.ConfigError:
    earlier = None
  live = any(n in (workdir_lib.CHECKPOINTS, workdir_lib.TENSORBOARD, workdir_lib.SUBMITIT_FOLDER)
             for _, dirs, _ in os.walk(dst) for n in dirs)
  if earlier is None or earlier.get('sweep') != sweep_spec or live:
    what = ('a sweep that trains there' if live else
            f'a publication of another sweep ({earlier.get("sweep")})' if earlier else
            'no earlier publication')
    raise errors.WorkdirConflict(
        f'The destination {dst} exists and holds {what}; only an earlier publication of '
        f'{sweep_spec} is replaced: choose a new folder, or remove it yourself')


def _read_text(path: str) -> str:
  try:
    with open(path) as f:
      return f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise errors.DataError(f'Cannot read {path}: {getattr(e, "strerror", None) or e}') from None


def publish(src: str, dst: str, roots=('.',), spec: str = '', overrides=None) -> list:
  """Writes `dst` from the sweep in `src` (see the module's docstring); returns the runs."""
  if not os.path.isdir(src):
    raise FileNotFoundError(f'No sweep folder {src!r}')
  files = {}  # Path under dst -> its text, all read and checked before anything is written.
  if spec:
    runs = sweep.load_sweep(spec, overrides)
    with tempfile.TemporaryDirectory() as tmp:
      sweep.write_manifest(runs, tmp, spec, sweep.load_questions(spec, runs))
      with open(os.path.join(tmp, workdir_lib.SWEEP_FILE)) as f:
        files[workdir_lib.SWEEP_FILE] = f.read()
  elif sweep.read_manifest(src) is not None:  # Read as data, and checked.
    files[workdir_lib.SWEEP_FILE] = _read_text(os.path.join(src, workdir_lib.SWEEP_FILE))
  else:
    raise FileNotFoundError(f'{src!r} has no {workdir_lib.SWEEP_FILE}: pass --sweep '
                            f'SWEEP_FILE[:arg] (with its --override flags) to write one')
  done = finished_runs(src)
  for run in done:
    for name in RUN_FILES:
      path = os.path.join(src, run, name)
      if os.path.exists(path):
        files[os.path.join(run, name)] = _read_text(path)
  for name, text in files.items():
    files[name] = text = relative(text, roots)
    left = _ABSOLUTE.search(text)
    if left:
      raise errors.ConfigError(f'{name} still names the absolute path {left.group(0)!r}: pass '
                               f'--root for a folder above it (roots: {", ".join(roots)})')
  check_destination(src, dst, json.loads(files[workdir_lib.SWEEP_FILE])['sweep'])
  # Built beside dst under its own name (the report's title), then swapped in.
  parent = os.path.dirname(os.path.abspath(dst))
  os.makedirs(parent, exist_ok=True)
  stage = tempfile.mkdtemp(prefix='.publishing-', dir=parent)
  try:
    new = os.path.join(stage, os.path.basename(os.path.abspath(dst)))
    for name, text in files.items():
      os.makedirs(os.path.dirname(os.path.join(new, name)), exist_ok=True)
      with open(os.path.join(new, name), 'w') as f:
        f.write(text)
    report.write_report(new)
    if os.path.exists(dst):
      os.rename(dst, os.path.join(stage, 'replaced'))
    os.rename(new, dst)
  finally:
    shutil.rmtree(stage, ignore_errors=True)
  return done


def define_flags():
  flags.DEFINE_multi_string('root', ['.'], 'A folder whose paths are written relative to it '
                            '(the repository, a worktree the runs trained from, the data\'s '
                            'parent); may be given more than once.')
  flags.DEFINE_string('sweep', '', 'SWEEP_FILE[:arg] to write the manifest from, where SRC has '
                      'none (runs started from `nin.launch.sweep --dry_run`).')
  flags.DEFINE_multi_string('override', [], 'With --sweep: the KEY=VALUE overrides the runs '
                            'were given, as for nin.launch.sweep.')


def main(argv):
  from absl import app
  if len(argv) != 3:
    raise app.UsageError('Usage: python -m nin publish SWEEP_WORKDIR DST [--root DIR] '
                         '[--sweep SWEEP_FILE[:arg] --override KEY=VALUE]', 2)
  f = flags.FLAGS

  def run():
    done = publish(argv[1], argv[2], f.root, f.sweep, sweep.parse_overrides(f.override))
    print(f'{argv[2]}: {len(done)} finished runs and their report')
  return run()
