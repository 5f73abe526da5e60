r"""Runs a sweep of train.py commands, one after another, or prints them.

  python -m nin sweep configs/sweeps/compare.py --workdir runs/compare --dry_run
  python -m nin sweep configs/sweeps/compare.py:digits --workdir runs/compare_digits

A sweep file defines `get_sweep(arg)` returning a list of runs, each a dict
with 'group', 'seed', 'config' ('file.py[:variants]') and 'overrides'
({'optimizer.learning_rate': 0.05, ...}). Run i goes to
<workdir>/<group>/seed<seed>. Finished runs (with final_metrics.json) are
skipped; interrupted ones resume from their checkpoints, since train.py
does. `--dry_run` prints one complete command per line, for a cluster
launcher (a SLURM array, GNU parallel) to run in parallel: each changes to the
absolute paths (this interpreter, train.py, the config file, the workdir), so it
runs as printed from any folder and shell. `--override
KEY=VALUE` (repeatable) sets a config field in every run, e.g. where this
machine keeps its data: `--override dataset.data_dir=/data/tfds`. A failed run is
marked with a FAILED file in its workdir and the sweep goes on; the exit
code is non-zero if any run failed. Ctrl-C or SIGTERM to the sweep reaches the
running train.py, which saves a checkpoint and stops; the sweep then stops
too (exit 128+signal), and resumes that run when started again. If the sweep
itself is killed (SIGKILL), Linux sends its train.py SIGTERM, so no run trains
on as an orphan.
"""
import ast
import difflib
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import warnings

from absl import app, flags
from ml_collections import config_flags

from nin import workdir as workdir_lib
from nin.errors import ConfigError, Interrupted, storage_problem
from nin.runtime import children

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def parse_overrides(pairs, flag: str = 'override', example: str = 'dataset.data_dir=/data',
                    literals: bool = False) -> dict:
  """['a.b=1', 'c=/x'] -> {'a.b': '1', 'c': '/x'}: config overrides stay text, which
  ml_collections parses by each field's type, as it parses train.py's `--config.a.b=1`.

  `literals`: Python literals where they parse, else strings (--slurm_extra's
  values, which go to submitit, not to a config). `flag` and `example` name the
  command-line flag the pairs came from in errors.
  """
  out = {}
  for pair in pairs:
    key, sep, text = pair.partition('=')
    if not sep or not key:
      raise ConfigError(f'--{flag} {pair!r} is not KEY=VALUE (e.g. {example})')
    out[key] = text
    if literals:
      try:
        out[key] = ast.literal_eval(text)
      except (ValueError, SyntaxError):
        pass
  return out


def load_sweep(spec: str, overrides=None) -> list:
  """Loads 'path/to/sweep.py[:arg]' and returns its runs, each with `overrides` added."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise ConfigError(f'No sweep file {path!r}')
  try:
    module = _load_module(path, 'sweep_module')
  except SyntaxError as e:
    raise ConfigError(f'Sweep file {path} does not parse: {e.msg} (line {e.lineno})') from None
  if not callable(getattr(module, 'get_sweep', None)):
    raise ConfigError(f'Sweep file {path} defines no get_sweep(arg)')
  try:
    runs = module.get_sweep(arg or None)
  except Exception as e:  # A sweep file's own check of its argument, or a bug in it.
    raise ConfigError(f'{path}: get_sweep({arg or None!r}) failed: '
                      f'{type(e).__name__}: {e}') from None
  if not isinstance(runs, (list, tuple)) or not runs:
    raise ConfigError(f'{path}: get_sweep({arg or None!r}) returned {runs!r}; it must return '
                      f'a non-empty list of runs')
  for r in runs:
    missing = {'group', 'seed', 'config', 'overrides'} - set(r) if isinstance(r, dict) else {'all'}
    if missing:
      raise ConfigError(f'Sweep run {r!r} lacks {", ".join(sorted(missing))} (each run is a '
                        f'dict with group, seed, config and overrides)')
  for r in runs:
    for key in ('group', 'seed'):
      _check_name(key, r[key], path)
  _refuse_varied_overrides(runs, overrides or {}, path)
  runs = [dict(r, overrides={**r['overrides'], **(overrides or {})}) for r in runs]
  names = [run_name(r) for r in runs]
  if len(set(names)) != len(names):
    raise ConfigError('Two runs of the sweep share a group and seed')
  for r in runs:  # Every field named exists: a misspelt override launches nothing.
    try:
      config = build_config(r)
      from nin.train import validate  # JAX, only once a sweep is loaded (not for --status).
      validate.check_finite(config)
      r['resolved'] = json.loads(config.to_json())  # Kept in sweep.json, as data.
    except (ConfigError, flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
      raise ConfigError(f'Sweep run {run_name(r)} ({r["config"]}): {e}') from None
  return runs


def _check_name(key: str, value, path: str) -> None:
  """A run's group is one plain folder name and its seed an integer: <workdir>/<group>/seed<k>
  stays inside the sweep's workdir."""
  if key == 'seed':
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    valid = 'a non-negative integer'
  else:
    ok = (isinstance(value, str) and value not in ('', '.', '..') and '/' not in value
          and '\\' not in value and not value.startswith('.') and value.isprintable())
    valid = "one plain folder name (no '/', not starting with '.')"
  if not ok:
    raise ConfigError(f'{path}: a run\'s {key} {value!r} must be {valid}')


def varied_fields(runs) -> set:
  """The config fields whose values are not the same in every run of the sweep (as each
  run's config file and overrides resolve them): what tells its groups and seeds apart."""
  from flax import traverse_util  # JAX, only when overrides are checked.
  flat = []
  for r in runs:
    try:
      flat.append(traverse_util.flatten_dict(json.loads(build_config(r).to_json()), sep='.'))
    except Exception:  # A run that does not build: load_sweep names it next.
      continue
  keys = {k for f in flat for k in f}
  return {k for k in keys if len({repr(f.get(k, '<unset>')) for f in flat}) > 1} | {'seed'}


def _refuse_varied_overrides(runs, overrides: dict, path: str) -> None:
  """An --override of a field the sweep varies would make its groups or seeds one run
  trained several times (and a report's interval over them a fake finding)."""
  if not overrides:
    return
  varied = varied_fields(runs)
  clash = sorted(k for k in overrides
                 if k in varied or any(v.startswith(k + '.') for v in varied))
  if clash:
    raise ConfigError(f'--override {clash[0]}=... would set a field that tells the runs of '
                      f'{path} apart (their seeds, or what defines their groups), so they would '
                      f'be one run trained several times; --override is for what every run '
                      f'shares (e.g. dataset.data_dir)')


def load_questions(spec: str, runs: list) -> list:
  """The questions a sweep file asks (`get_questions(arg)`, optional): [{'id', 'question', 'a', 'b'}].

  Each names two of the sweep's groups; nin.experiments.report answers it with the
  difference of their means and its interval.
  """
  path, _, arg = spec.partition(':')
  module = _load_module(path, 'sweep_module')
  if not callable(getattr(module, 'get_questions', None)):
    return []
  questions = list(module.get_questions(arg or None))
  groups = {r['group'] for r in runs}
  for q in questions:
    missing = {'id', 'question', 'a', 'b'} - set(q)
    if missing:
      raise ConfigError(f'{path}: question {q!r} lacks {", ".join(sorted(missing))}')
    for side in ('a', 'b'):
      if q[side] not in groups:
        raise ConfigError(f'{path}: question {q["id"]} names group {q[side]!r}, which no run '
                          f'of the sweep has (groups: {", ".join(sorted(groups))})')
  return questions


def _load_module(path: str, name: str):
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def build_config(run, root: str = ''):
  """The config a run's train.py command builds: its config file and variant, and its
  overrides as command-line text, parsed by ml_collections' config flags as train.py's."""
  root = root or repo_root()
  argv = ['sweep', f"--config={os.path.join(root, run['config'])}"] + [
      a for a in command(run, '', root=root) if a.startswith('--config.')]
  flag_values = flags.FlagValues()  # Its own flags: nothing of this process's is touched.
  config_flags.DEFINE_config_file('config', flag_values=flag_values, sys_argv=argv)
  try:
    with warnings.catch_warnings():  # ml_collections loads config files with load_module().
      warnings.filterwarnings('ignore', 'the load_module', DeprecationWarning)
      flag_values(argv)
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError):
    # ml_collections names only the last part of a misspelt field: name the whole of it.
    path, _, arg = run['config'].partition(':')
    config = _load_module(os.path.join(root, path), 'config_module').get_config(arg or None)
    for key in run['overrides']:
      _check_field(config, key)
    raise
  return flag_values.config


def _check_field(config, key: str) -> None:
  node = config
  for i, part in enumerate(key.split('.')):
    fields = list(node.keys()) if hasattr(node, 'keys') else []
    if part not in fields:
      close = difflib.get_close_matches(part, fields, n=1)
      hint = f"; did you mean '{'.'.join(key.split('.')[:i] + close)}'?" if close else ''
      raise ConfigError(f"unknown config field '{key}'{hint}")
    node = node[part]


def run_name(run) -> str:
  return f"{run['group']}/seed{run['seed']}"


def _value(v) -> str:
  return repr(v).replace(' ', '') if isinstance(v, (tuple, list)) else str(v)


def command(run, workdir: str, python: str = 'python', root: str = '') -> list:
  """The train.py command of one run, as an argument list (paths inside `root`, if given)."""
  args = [python, os.path.join(root, 'train.py'), '--config', os.path.join(root, run['config']),
          '--workdir', os.path.join(workdir, run_name(run))]
  overrides = {'seed': run['seed'], **run['overrides']}  # The seed in the name is the seed.
  args += [f'--config.{k}={_value(v)}' for k, v in sorted(overrides.items())]
  return args


def read_manifest(workdir: str):
  """The sweep.json that `write_manifest` left in `workdir` ({'sweep', 'questions', 'runs'}),
  or None when there is none."""
  path = os.path.join(workdir, workdir_lib.SWEEP_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      manifest = json.load(f)
    runs = manifest['runs']
    for r in runs:
      _check_name('group', r['group'], path)
      _check_name('seed', r['seed'], path)
      if r['name'] != run_name(r):
        raise ValueError(f"run {r['name']!r} is not {run_name(r)!r}")
    if not isinstance(manifest.get('questions', []), list):
      raise ValueError('its questions are not a list')
  except (ValueError, KeyError, TypeError, UnicodeDecodeError, ConfigError) as e:
    raise ConfigError(f'{path} is damaged or not a sweep manifest of this project ({e}); '
                      f'write it again with the sweep\'s command') from None
  return manifest


def write_manifest(runs, workdir: str, spec: str, questions=()) -> None:
  """sweep.json: the sweep file named, its questions, and each run with the config it
  resolves to, so that reports read a run's config as data even before it starts."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f'--workdir {workdir} is a file, not a folder')
  entries = [dict(r, name=run_name(r)) for r in runs]
  try:
    os.makedirs(workdir, exist_ok=True)
    workdir_lib.write_atomically(os.path.join(workdir, workdir_lib.SWEEP_FILE), json.dumps(
        {'sweep': spec, 'questions': list(questions), 'runs': entries}, indent=1))
  except OSError as e:
    raise ConfigError(f'Cannot write {workdir_lib.SWEEP_FILE} in --workdir {workdir}: '
                      f'{storage_problem(e) or e.strerror}') from None


def run_sweep(spec: str, workdir: str, python: str = sys.executable, overrides=None) -> dict:
  """Runs every unfinished run in turn; returns {name: status} at the end."""
  runs = load_sweep(spec, overrides)
  write_manifest(runs, workdir, spec, load_questions(spec, runs))
  results = {}
  for i, run in enumerate(runs):
    name, run_dir = run_name(run), os.path.join(workdir, run_name(run))
    state = workdir_lib.status(run_dir)
    if state in ('finished', 'running'):  # Running: another sweep or launcher has it.
      print(f'[{i + 1}/{len(runs)}] {name}: {state}, skipped', flush=True)
      results[name] = state
      continue
    cmd = command(run, workdir, python)
    print(f'[{i + 1}/{len(runs)}] {name}: {shlex.join(cmd)}', flush=True)
    workdir_lib.clear_failed(run_dir)  # Tried again.
    code, stderr, signum = _run_child(cmd)
    sys.stderr.write(stderr)
    if signum is not None or code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
      # Stopped by the user: the run saved a checkpoint and resumes with the sweep.
      signum = signum or code - 128
      raise Interrupted(None, signum, f'Sweep stopped by {signal.Signals(signum).name} during '
                        f'{name}, which saved a checkpoint; run the same command again to '
                        f'resume it and the runs after it')
    if code != 0:
      workdir_lib.mark_failed(run_dir, code, stderr)
    results[name] = workdir_lib.status(run_dir)
  return results


def _run_child(cmd):
  """Runs one train.py to its end; returns (exit code, its stderr, the signal that stopped
  the sweep meanwhile or None). SIGINT and SIGTERM to the sweep are passed on to the run,
  which saves a checkpoint and stops, and the sweep waits for it (the run may get a Ctrl-C
  twice, from the terminal and from here: it stops once)."""
  proc = subprocess.Popen(cmd, cwd=repo_root(), stderr=subprocess.PIPE, text=True,
                          preexec_fn=children.die_with_parent(signal.SIGTERM))
  received = []

  def forward(signum, _):
    received.append(signum)
    proc.send_signal(signum)

  old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    _, stderr = proc.communicate()
  finally:
    for s, handler in old.items():
      signal.signal(s, handler)
  return proc.returncode, stderr, received[0] if received else None


def repo_root() -> str:
  return _REPO_ROOT


STATUS_ORDER = ('finished', 'running', 'incomplete', 'failed', 'missing')


def status_lines(workdir: str) -> list:
  """Each run of the sweep in `workdir` (its sweep.json) with its state, then the counts."""
  manifest = read_manifest(workdir)
  if manifest is None:
    raise ConfigError(f'{workdir} holds no sweep ({workdir_lib.SWEEP_FILE} is missing): start '
                      f'one there first')
  names = [r['name'] for r in manifest['runs']]
  states = {n: workdir_lib.status(os.path.join(workdir, n)) for n in names}
  label = lambda s: 'pending' if s == 'missing' else s
  lines = [f'{n}: {label(s)}' for n, s in states.items()]
  counts = [f'{list(states.values()).count(s)} {label(s)}' for s in STATUS_ORDER
            if s in states.values()]
  return lines + ['Sweep: ' + ', '.join(counts)]


def submit_sweep(spec: str, workdir: str, overrides, resources, cluster: str = '') -> int:
  """Submits the runs not finished or running as one array; waits when they run locally."""
  from nin.launch import slurm  # submitit: only when asked for.
  runs = load_sweep(spec, overrides)
  write_manifest(runs, workdir, spec, load_questions(spec, runs))
  pending = [r for r in runs if workdir_lib.status(os.path.join(workdir, run_name(r)))
             not in ('finished', 'running')]
  if not pending:
    print('Sweep: nothing to submit (every run finished or running)', flush=True)
    return 0
  root = repo_root()
  commands = [command(r, os.path.abspath(workdir), sys.executable, root) for r in pending]
  run_dirs = [os.path.join(os.path.abspath(workdir), run_name(r)) for r in pending]
  jobs, cluster = slurm.submit(commands, run_dirs, workdir, root, resources, cluster)
  for run, job in zip(pending, jobs):
    print(f'{run_name(run)}: job {job.job_id} ({cluster})', flush=True)
  if cluster != 'local':  # A cluster's queue: follow it with --status.
    print(f'Submitted {len(jobs)} runs; python -m nin sweep --workdir {workdir} --status',
          flush=True)
    return 0
  failed = 0
  for run, job in zip(pending, jobs):
    try:
      job.result()
    except Exception as e:  # submitit re-raises the task's error, with its log.
      failed += 1
      print(f'{run_name(run)}: failed ({str(e).strip().splitlines()[-1][:200]})',
            flush=True)
  print('\n'.join(status_lines(workdir)[-1:]), flush=True)
  return 1 if failed else 0


def define_flags():
  flags.DEFINE_string('workdir', None, 'Root folder of the sweep; each run gets a subfolder.')
  flags.DEFINE_bool('dry_run', False, 'Print one train.py command per line and exit.')
  flags.DEFINE_bool('status', False, 'Print the state of every run of the sweep in --workdir '
                    '(pending, running, incomplete, failed, finished) and exit.')
  flags.DEFINE_multi_string('override', [], 'KEY=VALUE set in every run\'s config '
                            '(e.g. dataset.manual_dir=/data/cifar); repeatable.')
  flags.DEFINE_enum('launcher', 'local', ['local', 'submitit'],
                    'local: one run after another here. submitit: one job array (SLURM where '
                    'sbatch exists, else submitit\'s local executor; nin/launch/slurm.py).')
  flags.DEFINE_string('slurm_partition', '', 'submitit: the SLURM partition.')
  flags.DEFINE_integer('slurm_time_min', 240, lower_bound=1,
                       help='submitit: time limit of a task, in minutes '
                       '(a task that reaches it saves, is requeued and resumes).')
  flags.DEFINE_integer('slurm_gpus_per_run', 0, lower_bound=0,
                       help='submitit: GPUs per run (one process each).')
  flags.DEFINE_integer('slurm_cpus_per_run', 2, lower_bound=1, help='submitit: CPUs per run.')
  flags.DEFINE_integer('slurm_nodes_per_run', 1, lower_bound=1, help='submitit: nodes per run.')
  flags.DEFINE_integer('slurm_array_parallelism', 16, lower_bound=1,
                       help='submitit: runs at once, at most.')
  flags.DEFINE_multi_string('slurm_extra', [], 'submitit: KEY=VALUE, another sbatch option '
                            '(e.g. account=myproj, qos=high); repeatable.')
  flags.DEFINE_enum('submitit_cluster', '', ['', 'slurm', 'local'],
                    'submitit: force its executor (default: SLURM where sbatch exists).')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  f = flags.FLAGS
  if f.status and len(argv) == 1:
    print('\n'.join(status_lines(f.workdir)))
    return 0
  if len(argv) != 2:
    raise app.UsageError(
        'Usage: python -m nin sweep SWEEP_FILE[:arg] --workdir DIR [--dry_run | --status]', 2)
  spec, workdir = argv[1], f.workdir

  def sweep():
    overrides = parse_overrides(f.override)
    if f.status:
      print('\n'.join(status_lines(workdir)))
      return 0
    if f.dry_run:  # Runs as printed from any folder: absolute paths, this Python.
      for run in load_sweep(spec, overrides):
        print(shlex.join(command(run, os.path.abspath(workdir), sys.executable, repo_root())))
      return 0
    if f.launcher == 'submitit':
      from nin.launch.slurm import SlurmSpec
      resources = SlurmSpec(
          partition=f.slurm_partition, time_min=f.slurm_time_min,
          gpus_per_run=f.slurm_gpus_per_run, cpus_per_run=f.slurm_cpus_per_run,
          nodes_per_run=f.slurm_nodes_per_run, array_parallelism=f.slurm_array_parallelism,
          extra=parse_overrides(f.slurm_extra, 'slurm_extra', 'account=myproject',
                                literals=True))
      return submit_sweep(spec, workdir, overrides, resources, f.submitit_cluster)
    results = run_sweep(spec, workdir, overrides=overrides)
    counts = {s: list(results.values()).count(s) for s in sorted(set(results.values()))}
    print('Sweep: ' + ', '.join(f'{n} {s}' for s, n in counts.items()), flush=True)
    return 0 if set(results.values()) == {'finished'} else 1
  return sweep()
