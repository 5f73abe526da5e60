"""Hostile use of every command: nothing lost, nothing hung, nothing run from data.

Each numbered failure a hostile walk through the tools once found has a test
here (its number in the comment), and `test_every_command_*` walk the classes
of bad input over the commands: damaged files, paths of the wrong kind or that
cannot be written, non-finite numbers. A refusal is one line, a non-zero exit,
and leaves the workdir as it found it.

Writes that the permission bits forbid need a process without root's file
override: `capsh` drops it (root without CAP_DAC_OVERRIDE, as on this project's
machines and CI).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import runs
import test_publish
import test_report
from nin import errors
from nin import workdir as workdir_lib
from nin.experiments import publish, questions, report, results
from nin.launch import sweep

SMOKE = ('--config', 'configs/nin.py:smoke')


def _one_line(p, code, *fragments):
  assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
  err = p.stderr.strip()
  assert err.count('\n') == 0 and 'Traceback' not in err, err
  assert all(f in err for f in fragments), err


def _tree(path) -> dict:
  """Every file under `path` with its content's hash: what 'left as it was' compares."""
  out = {}
  for d, _, files in os.walk(path):
    for name in files:
      full = os.path.join(d, name)
      with open(full, 'rb') as f:
        out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _tool(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'nin', *args], cwd=runs.ROOT, env=runs.env(),
                        capture_output=True, text=True, timeout=timeout)


def _unprivileged(*cmd):
  """`cmd` as root without the permission to write where the permission bits forbid."""
  if shutil.which('capsh') is None:
    pytest.skip('capsh (libcap) is needed to drop root\'s file-permission override')
  return ['capsh', '--drop=cap_dac_override,cap_dac_read_search', '--', '-c',
          ' '.join(subprocess.list2cmdline([c]) for c in cmd)]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A finished two-step NiN smoke run, copied by each test that changes it."""
  workdir = str(tmp_path_factory.mktemp('trained') / 'run')
  runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=2', check=True)
  return workdir


def _copy(trained, tmp_path, name='run'):
  dst = str(tmp_path / name)
  shutil.copytree(trained, dst)
  return dst


# ------------------------------------------------------------------ 1. a changed network

def test_another_model_is_refused_and_the_runs_files_stay(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  before = _tree(workdir)
  p = runs.cli('train.py', '--config', 'configs/plain.py:smoke', '--workdir', workdir,
               '--allow_config_change')
  _one_line(p, 2, "holds a run of model.name 'nin', not 'plain'",
            '--allow_config_change cannot change model.name')
  assert _tree(workdir) == before


def test_a_saved_config_edited_to_another_width_is_refused_not_called_corrupt(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  config = json.loads(open(os.path.join(workdir, 'config.json')).read())
  config['model']['width_divisor'] //= 2  # The checkpoint holds the other width's arrays.
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump(config, f)
  before = _tree(workdir)
  p = runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=4',
               f"--config.model.width_divisor={config['model']['width_divisor']}",
               '--allow_config_change')
  _one_line(p, 2, "hold another network's or optimizer's arrays", 'nothing was changed there')
  assert _tree(workdir) == before
  assert not os.path.exists(os.path.join(workdir, workdir_lib.CORRUPT_CHECKPOINTS))


# ------------------------------------------------------------------ 2. publish deletes nothing

def _published_sweep(tmp_path):
  repo = tmp_path / 'repo'
  src = repo / 'runs' / 'sweep'
  test_publish._sweep(src, repo / 'CIFAR', repo)
  (repo / 'runs' / 'sibling').mkdir()
  (repo / 'runs' / 'sibling' / 'keep.txt').write_text('a sibling of the sweep')
  return repo, src


@pytest.mark.parametrize('where', ['itself', 'its parent', 'inside it', 'an unrelated folder',
                                   'a file', 'another sweeps publication'])
def test_publish_refuses_a_destination_whose_replacing_would_delete_anything(tmp_path, where):
  repo, src = _published_sweep(tmp_path)
  dst = {'itself': src, 'its parent': src.parent, 'inside it': src / 'published',
         'an unrelated folder': repo / 'docs', 'a file': repo / 'notes.txt',
         'another sweeps publication': repo / 'docs' / 'other'}[where]
  if where == 'an unrelated folder':
    dst.mkdir()
    (dst / 'unrelated.md').write_text('not a publication')
  elif where == 'a file':
    dst.write_text('a file')
  elif where == 'another sweeps publication':
    dst.mkdir(parents=True)
    (dst / 'sweep.json').write_text(json.dumps({'sweep': 'another.py', 'runs': []}))
  before = _tree(repo)
  with pytest.raises(errors.WorkdirConflict, match='destination'):
    publish.publish(str(src), str(dst), roots=(str(repo),))
  assert _tree(repo) == before
  for folder in {dst.parent, repo / 'runs'}:  # No staging folder left beside it either.
    assert not [n for n in os.listdir(folder) if n.startswith('.publishing')]


def test_publish_to_the_working_folder_is_one_line(tmp_path):
  repo, src = _published_sweep(tmp_path)
  p = subprocess.run([sys.executable, '-m', 'nin', 'publish', 'runs/sweep', '.'], cwd=repo,
                     env=dict(runs.env(), PYTHONPATH=runs.ROOT), capture_output=True, text=True,
                     timeout=120)
  _one_line(p, 2, 'contains the sweep folder')
  assert (src / 'g' / 'seed0' / 'checkpoints' / 'big').exists()


def test_publishing_again_replaces_only_the_earlier_publication(tmp_path):
  repo, src = _published_sweep(tmp_path)
  dst = repo / 'docs' / 'sweep'
  publish.publish(str(src), str(dst), roots=(str(repo),))
  (dst / 'stale.txt').write_text('left by the earlier publication')
  publish.publish(str(src), str(dst), roots=(str(repo),))
  assert not (dst / 'stale.txt').exists() and (dst / 'report.md').exists()
  assert (repo / 'runs' / 'sibling' / 'keep.txt').exists()


# ------------------------------------------------------------------ 3. fake seeds

def _sweep_file(tmp_path, runs_text):
  path = tmp_path / 'sweep_file.py'
  path.write_text('def get_sweep(arg):\n  return ' + runs_text + '\n')
  return str(path)


def test_an_override_of_what_tells_runs_apart_is_refused(tmp_path):
  spec = _sweep_file(tmp_path, "[{'group': g, 'seed': s, 'config': 'configs/nin.py:smoke', "
                               "'overrides': {'optimizer.learning_rate': lr}} "
                               "for g, lr in (('slow', 0.05), ('fast', 0.1)) for s in (0, 1)]")
  for key in ('seed', 'optimizer.learning_rate', 'optimizer'):
    with pytest.raises(errors.ConfigError, match=f'--override {key}=.*tells the runs'):
      sweep.load_sweep(spec, {key: '7'})
  assert len(sweep.load_sweep(spec, {'dataset.data_dir': '/data'})) == 4  # Shared: fine.
  p = _tool('sweep', spec, '--workdir', str(tmp_path / 'w'), '--override', 'seed=7')
  _one_line(p, 2, '--override seed=... would set a field that tells the runs')
  assert not (tmp_path / 'w').exists()


def _run(group, seed, config_seed, test=0.6):
  config = test_report.plain_config.get_config('airbench')
  config.seed = config_seed
  config.log_every_steps = 10 + len(group)
  return {'name': f'{group}/seed{seed}', 'group': group, 'seed': seed, 'status': 'finished',
          'config': config, 'final': {'test_accuracy': test + seed / 100,
                                      'val_accuracy': test, 'epochs': 5.0}}


def test_the_report_refuses_an_interval_over_one_run_trained_twice():
  faked = [_run('nin', s, 7) for s in range(3)]  # Every seedK folder trained with seed 7.
  with pytest.raises(errors.ConfigError, match='identical configs .seed 7 in both.'):
    results.group_rows(faked)
  same = [_run('a', s, s) for s in range(3)]
  other = [dict(r, group='b', name=r['name'].replace('a/', 'b/')) for r in same]
  asked = [{'id': 'Q1', 'question': 'a or b?', 'a': 'a', 'b': 'b'}]
  with pytest.raises(errors.ConfigError, match='Q1: its groups a and b were trained with the same'):
    questions.answer(asked, same + other, rows=[])


# ------------------------------------------------------------------ 4. no hang after an error

def test_a_save_that_fails_ends_the_run_in_one_line_naming_its_step(tmp_path):
  """`ulimit -f` smaller than a checkpoint's largest file: the save of step 2 fails in
  Orbax's writer thread (9: it used to be reported at a later step), the process exits."""
  workdir = str(tmp_path / 'run')
  start = time.time()
  cmd = subprocess.list2cmdline([sys.executable, 'train.py', *SMOKE, '--workdir', workdir,
                                 '--config.num_train_steps=4', '--config.eval_every_epochs=0.01'])
  # The tests' shared compilation cache would meet the limit too: not this run's concern.
  env = dict(runs.env(), JAX_ENABLE_COMPILATION_CACHE='false')
  p = subprocess.run(['bash', '-c', f'ulimit -f 20 && exec {cmd}'], cwd=runs.ROOT, env=env,
                     capture_output=True, text=True, timeout=240)
  _one_line(p, 1, 'Cannot write the checkpoint of step 1 ', 'file too large',
            'run the same command again')
  assert time.time() - start < 200
  ckpts = os.path.join(workdir, 'checkpoints')
  assert not [n for n in os.listdir(ckpts) if 'tmp' in n]  # The partial step is removed.
  # With the limit gone, the same command resumes and finishes.
  runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=4',
           '--config.eval_every_epochs=0.01', check=True)
  assert runs.final(workdir)['step'] == 4


def test_a_folder_made_unwritable_mid_run_ends_it_in_one_line(tmp_path):
  workdir = str(tmp_path / 'run')
  cmd = _unprivileged(sys.executable, 'train.py', *SMOKE, '--workdir', workdir,
                      '--config.num_train_steps=300', '--config.eval_every_epochs=100',
                      '--config.log_every_steps=2')
  proc = subprocess.Popen(cmd, cwd=runs.ROOT, env=runs.env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  for line in proc.stdout:  # Training: the checkpoint folder exists, nothing saved yet.
    if line.startswith('step 2:'):
      break
  os.chmod(os.path.join(workdir, 'checkpoints'), 0o555)
  try:
    out, err = proc.communicate(timeout=120)  # It used to hang here, forever.
  finally:
    os.chmod(os.path.join(workdir, 'checkpoints'), 0o755)
    proc.kill()
  _one_line(subprocess.CompletedProcess(cmd, proc.returncode, out, err), 1,
            'Cannot write the checkpoint of step 300', 'permission denied')


# ------------------------------------------------------------------ 5. no orphans

def _pids(fragment: bytes) -> list:
  found = []
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        if fragment in f.read():
          found.append(int(pid))
    except OSError:
      continue
  return found


def _wait_for(predicate, timeout):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return True
    time.sleep(0.2)
  return False


@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_submitit_sweep_leaves_nothing_running(tmp_path, signum):
  pytest.importorskip('submitit')
  workdir = tmp_path / 'sw'
  spec = _sweep_file(tmp_path, "[{'group': 'long', 'seed': 0, 'config': 'configs/nin.py:smoke', "
                               "'overrides': {'num_train_steps': 100000}}]")
  proc = subprocess.Popen([sys.executable, '-m', 'nin', 'sweep', spec, '--workdir', str(workdir),
                           '--launcher=submitit', '--submitit_cluster=local'], cwd=runs.ROOT,
                          env=runs.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  run_dir = str(workdir / 'long' / 'seed0').encode()
  try:
    assert _wait_for(lambda: (workdir / 'long' / 'seed0' / 'metrics.jsonl').exists(), 240)
    assert _pids(run_dir)
    proc.send_signal(signum)
    proc.wait(timeout=60)
    assert _wait_for(lambda: not _pids(run_dir), 90), 'train.py trains on as an orphan'
    assert _wait_for(lambda: not _pids(b'submitit.local._local'), 30)
  finally:
    for pid in _pids(run_dir) + _pids(str(workdir).encode()):
      os.kill(pid, signal.SIGKILL)
  assert workdir_lib.status(run_dir.decode()) == 'incomplete'  # Not FAILED: it resumes.


def test_a_killed_device_check_stops_its_part_and_its_scratch_goes(tmp_path):
  out = tmp_path / 'out'
  proc = subprocess.Popen([sys.executable, '-m', 'nin', 'device_check', '--tiny', '--seeds=5',
                           '--parts=nin_quarter', f'--out={out}', '--budget_sec=600'],
                          cwd=runs.ROOT, env=runs.env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  marker = f'--out={out}'.encode()
  try:
    assert _wait_for(lambda: [p for p in _pids(marker) if p != proc.pid], 120)
    scratch = [n for n in os.listdir(tempfile.gettempdir())
               if n.startswith(f'nin_device_check_{proc.pid}_')]
    assert scratch
    proc.kill()
    proc.wait()
    assert _wait_for(lambda: not _pids(marker), 30), 'the part trains on as an orphan'
  finally:
    for pid in _pids(marker):
      os.kill(pid, signal.SIGKILL)
  from nin.checks import device_check
  device_check._remove_stale_scratch()  # What the next check does first.
  assert not os.path.exists(os.path.join(tempfile.gettempdir(), scratch[0]))


# ------------------------------------------------------------------ 6. no code run from data

def test_reports_never_import_the_config_file_a_manifest_names(tmp_path):
  marker = tmp_path / 'imported'
  evil = tmp_path / 'evil.py'
  evil.write_text(f'open({str(marker)!r}, "w").write("ran")\n'
                  'def get_config(arg=None):\n  raise SystemExit\n')
  root = tmp_path / 'sweep'
  test_report._fake_run(str(root), 'g', 0, [(10, 0.5)], {})
  (root / workdir_lib.SWEEP_FILE).write_text(json.dumps({'sweep': 'x', 'questions': [], 'runs': [
      {'group': 'g', 'seed': s, 'name': f'g/seed{s}', 'config': str(evil), 'overrides': {}}
      for s in (0, 1)]}))
  rows = results.group_rows(results.collect(str(root)))
  assert rows[0]['finished'] == 1 and rows[0]['expected'] == 2
  report.write_report(str(root), figures=False)
  publish.publish(str(root), str(tmp_path / 'published'), roots=(str(tmp_path),))
  assert not marker.exists()


def test_a_not_yet_started_run_is_described_from_the_manifests_copy_of_its_config(tmp_path):
  spec = _sweep_file(tmp_path, "[{'group': 'g', 'seed': s, 'config': 'configs/nin.py:smoke', "
                               "'overrides': {}} for s in (0, 1)]")
  runs_ = sweep.load_sweep(spec)
  sweep.write_manifest(runs_, str(tmp_path / 'sw'), spec)
  os.remove(spec)  # Gone: the report reads sweep.json alone.
  collected = results.collect(str(tmp_path / 'sw'))
  assert [r['status'] for r in collected] == ['missing', 'missing']
  assert collected[0]['config'].model.name == 'nin' and collected[1]['config'].seed == 1


# ------------------------------------------------------------------ 7. runs stay in the workdir

@pytest.mark.parametrize('group', ['../x', '/abs', '..', '.', 'a/b', '.hidden', ''])
def test_group_names_are_plain_folder_names(tmp_path, group):
  spec = _sweep_file(tmp_path, f"[{{'group': {group!r}, 'seed': 0, "
                               f"'config': 'configs/nin.py:smoke', 'overrides': {{}}}}]")
  with pytest.raises(errors.ConfigError, match='must be one plain folder name'):
    sweep.load_sweep(spec)


def test_a_manifest_naming_a_run_outside_the_sweep_is_refused(tmp_path):
  (tmp_path / workdir_lib.SWEEP_FILE).write_text(json.dumps({'sweep': 'x', 'runs': [
      {'group': '..', 'seed': 0, 'name': '../seed0'}]}))
  with pytest.raises(errors.ConfigError, match='damaged or not a sweep manifest'):
    sweep.read_manifest(str(tmp_path))


# ------------------------------------------------------------------ 8. one line, every class

@pytest.mark.parametrize('override', ['--config.num_epochs=nan', '--config.num_epochs=inf',
                                      '--config.optimizer.learning_rate=-inf',
                                      '--config.model.dropout_rate=nan'])
def test_every_command_refuses_non_finite_numbers_before_writing(tmp_path, override):
  workdir = tmp_path / 'run'
  _one_line(runs.cli('train.py', *SMOKE, '--workdir', str(workdir), override), 2,
            'must be a finite number')
  assert not workdir.exists()
  spec = _sweep_file(tmp_path, "[{'group': 'g', 'seed': 0, 'config': 'configs/nin.py:smoke', "
                               "'overrides': {}}]")
  key, value = override[len('--config.'):].split('=')
  with pytest.raises(errors.ConfigError, match='must be a finite number'):
    sweep.load_sweep(spec, {key: value})


def test_every_command_reads_damaged_files_in_one_line(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  lines = open(os.path.join(workdir, 'metrics.jsonl')).read().splitlines()
  lines.insert(1, 'garbage{')
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  os.remove(os.path.join(workdir, 'final_metrics.json'))
  before = _tree(workdir)
  _one_line(runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=2'),
            2, 'metrics.jsonl: line 2 is not a record', 'delete that line')
  assert _tree(workdir) == before
  sweep_root = tmp_path / 'sweep'
  os.makedirs(sweep_root / 'g')
  shutil.copytree(workdir, sweep_root / 'g' / 'seed0')
  shutil.copy(os.path.join(trained, 'final_metrics.json'), sweep_root / 'g' / 'seed0')
  _one_line(_tool('report', str(sweep_root)), 2, 'line 2 is not a record')
  for text in ('{"runs": [', '[1, 2]', '{"sweep": "x", "runs": [{"group": 3}]}'):
    (sweep_root / workdir_lib.SWEEP_FILE).write_text(text)
    _one_line(_tool('report', str(sweep_root)), 2, 'is damaged or not a sweep manifest')
    _one_line(_tool('sweep', '--workdir', str(sweep_root), '--status'), 2,
              'is damaged or not a sweep manifest')
  # A damaged saved transform is fitted again (the fit is deterministic), not a traceback.
  damaged = _copy(trained, tmp_path, 'damaged_transform')
  with open(os.path.join(damaged, workdir_lib.PREPROCESS_FILE), 'wb') as f:
    f.write(b'not an npz')
  p = runs.cli('eval.py', '--workdir', damaged)
  assert p.returncode == 0 and 'is unreadable' in p.stderr, p.stderr


def test_every_command_refuses_paths_of_the_wrong_kind(trained, tmp_path):
  a_file = tmp_path / 'a_file'
  a_file.write_text('x')
  spec = _sweep_file(tmp_path, "[{'group': 'g', 'seed': 0, 'config': 'configs/nin.py:smoke', "
                               "'overrides': {}}]")
  _one_line(_tool('sweep', spec, '--workdir', str(a_file)), 2, 'is a file, not a folder')
  _one_line(_tool('report', str(a_file)), 2, 'No sweep folder')
  _one_line(runs.cli('train.py', *SMOKE, '--workdir', str(a_file)), 2, 'is a file')
  workdir = _copy(trained, tmp_path)
  shutil.rmtree(os.path.join(workdir, 'tensorboard'))
  open(os.path.join(workdir, 'tensorboard'), 'w').close()  # A file where a folder belongs.
  before = _tree(workdir)
  _one_line(runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=4',
                     '--allow_config_change'), 2, 'tensorboard (in the workdir) is a file')
  assert _tree(workdir) == before
  assert a_file.read_text() == 'x'


def test_every_command_refuses_a_place_it_cannot_write_before_working(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  os.chmod(os.path.join(workdir, 'tensorboard'), 0o555)
  before = _tree(workdir)
  train = subprocess.run(_unprivileged(sys.executable, 'train.py', *SMOKE, '--workdir', workdir,
                                       '--config.num_train_steps=4', '--allow_config_change'),
                         cwd=runs.ROOT, env=runs.env(), capture_output=True, text=True,
                         timeout=300)
  _one_line(train, 2, 'Cannot write to', 'tensorboard', 'permission denied')
  assert _tree(workdir) == before
  os.chmod(workdir, 0o555)  # eval.py: refused before it evaluates, not after.
  try:
    ev = subprocess.run(_unprivileged(sys.executable, 'eval.py', '--workdir', workdir),
                        cwd=runs.ROOT, env=runs.env(), capture_output=True, text=True,
                        timeout=300)
    sweep_root = tmp_path / 'sweep'
    os.makedirs(sweep_root / 'g')
    shutil.copytree(trained, sweep_root / 'g' / 'seed0')
    os.chmod(sweep_root, 0o555)
    rep = subprocess.run(_unprivileged(sys.executable, '-m', 'nin', 'report', str(sweep_root)),
                         cwd=runs.ROOT, env=runs.env(), capture_output=True, text=True,
                         timeout=300)
  finally:
    os.chmod(workdir, 0o755)
    os.chmod(os.path.join(workdir, 'tensorboard'), 0o755)
    if (tmp_path / 'sweep').exists():
      os.chmod(tmp_path / 'sweep', 0o755)
  _one_line(ev, 2, 'Cannot write to', 'eval.py writes its results to', 'permission denied')
  assert 'accuracy' not in ev.stdout
  _one_line(rep, 2, 'Cannot write to', 'the sweep folder', 'permission denied')
  assert _tree(workdir) == before
  read_only = tmp_path / 'read_only'
  read_only.mkdir(mode=0o555)
  for args in (['bench', '--quick', f'--out={read_only}/bench.json'],
               ['device_check', '--tiny', f'--out={read_only}/check']):
    p = subprocess.run(_unprivileged(sys.executable, '-m', 'nin', *args), cwd=runs.ROOT,
                       env=runs.env(), capture_output=True, text=True, timeout=300)
    _one_line(p, 2, f'Cannot write to {read_only} (the folder of --out): permission denied')


def test_an_image_folder_that_cannot_be_read_is_one_line(tmp_path):
  import test_image_folder
  from nin import data
  from nin.data import image_folder
  root = tmp_path / 'cifar'
  test_image_folder.make_tree(str(root), per_class=(1, 1))
  loop = root / 'train' / 'cat' / 'loop.jpg'
  os.symlink(loop.name, loop)
  with pytest.raises(errors.DataError, match='loop.jpg cannot be read .Too many levels'):
    image_folder.load(str(root), data.CIFAR10_CLASSES)
  os.remove(loop)
  os.chmod(root / 'test' / 'dog', 0)
  try:
    p = subprocess.run(_unprivileged(sys.executable, '-c', (
        'import sys; from nin import data; from nin.data import image_folder\n'
        'try:\n'
        f'  image_folder.load({str(root)!r}, data.CIFAR10_CLASSES)\n'
        'except Exception as e:\n'
        '  print(type(e).__name__, e); sys.exit(3)')),
        cwd=runs.ROOT, env=dict(runs.env(), XDG_CACHE_HOME=str(tmp_path / 'cache')),
        capture_output=True, text=True, timeout=120)
  finally:
    os.chmod(root / 'test' / 'dog', 0o755)
  assert p.returncode == 3 and p.stdout.startswith('DataError'), p.stdout + p.stderr
  assert 'dog cannot be read (Permission denied)' in p.stdout


def test_output_into_a_closed_pipe_is_no_traceback(tmp_path):
  p = subprocess.run(f'{sys.executable} -m nin sweep configs/sweeps/questions.py:cpu '
                     f'--workdir {tmp_path} --dry_run | head -1', shell=True, cwd=runs.ROOT,
                     env=runs.env(), capture_output=True, text=True, timeout=300)
  assert p.stdout.count('\n') == 1 and 'Traceback' not in p.stderr, p.stderr


# ------------------------------------------------------------------ 9. the smaller ones

def test_a_finished_run_that_lost_its_checkpoints_is_not_trained_again(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  kept = _tree(workdir)
  p = runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=2', check=True)
  assert 'Already finished' in p.stdout and _tree(workdir) == kept  # Not even provenance.
  shutil.rmtree(os.path.join(workdir, 'checkpoints'))
  before = _tree(workdir)
  p = runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=2', check=True)
  assert 'Already finished' in p.stdout and _tree(workdir) == before
  longer = runs.cli('train.py', *SMOKE, '--workdir', workdir, '--config.num_train_steps=4',
                    '--allow_config_change')
  _one_line(longer, 2, 'finished at step 2 and has no checkpoint to continue from')
  assert _tree(workdir) == before


def test_slurm_flags_refuse_values_that_mean_nothing(tmp_path):
  for flag in ('--slurm_time_min=-5', '--slurm_time_min=0', '--slurm_cpus_per_run=0',
               '--slurm_nodes_per_run=0', '--slurm_array_parallelism=0',
               '--slurm_gpus_per_run=-1'):
    _one_line(_tool('sweep', 'configs/sweeps/compare.py:digits', '--workdir', str(tmp_path / 'w'),
                    '--launcher=submitit', flag), 2, flag.split('=')[0])
  assert not (tmp_path / 'w').exists()


def test_overwrite_deletes_only_a_runs_workdir(tmp_path):
  root = tmp_path / 'sweep'
  root.mkdir()
  (root / workdir_lib.SWEEP_FILE).write_text('{"sweep": "x", "runs": []}')
  before = _tree(root)
  _one_line(runs.cli('train.py', *SMOKE, '--workdir', str(root), '--overwrite'), 2,
            '--overwrite would delete the sweep')
  other = tmp_path / 'home'
  other.mkdir()
  (other / 'thesis.tex').write_text('years of work')
  _one_line(runs.cli('train.py', *SMOKE, '--workdir', str(other), '--overwrite'), 2,
            'holds no run (config.json is missing)')
  assert _tree(root) == before and (other / 'thesis.tex').read_text() == 'years of work'
