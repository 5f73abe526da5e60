"""Sweeps: dry-run commands run as printed, skip finished runs, resume killed ones; the report."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

import runs

SWEEP = '''
def get_sweep(arg=None):
  steps = int(arg or 2)
  runs = [{{'group': 'nin', 'seed': s, 'config': 'configs/nin.py:smoke',
            'overrides': {{'num_train_steps': steps, 'eval_every_epochs': 0.5}}}} for s in (0, 1)]
  runs.append({{'group': 'broken', 'seed': 0, 'config': 'configs/plain.py:smoke',
               'overrides': {{'optimizer.name': 'lion'}}}})
  return runs{extra}
'''


def _sweep_file(tmp_path, extra=''):
  path = tmp_path / 'tiny.py'
  path.write_text(SWEEP.format(extra=extra))
  return str(path)


def _sweep(*args, **kw):
  return subprocess.run([sys.executable, '-m', 'nin', 'sweep', *args], cwd=runs.ROOT,
                        env=runs.env(), capture_output=True, text=True, **kw)


def test_dry_run_prints_commands_that_run_as_printed(tmp_path):
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  out = _sweep(sweep, '--workdir', workdir, '--dry_run', check=True).stdout.splitlines()
  prefix = f'{sys.executable} {runs.ROOT}/train.py --config {runs.ROOT}/configs/'
  assert len(out) == 3 and all(line.startswith(prefix) for line in out), out
  assert out[0].endswith(f'--workdir {workdir}/nin/seed0 --config.eval_every_epochs=0.5 '
                         f'--config.num_train_steps=2 --config.seed=0')
  # From another folder, with no virtual environment on PATH: it runs as printed.
  subprocess.run(['bash', '-c', out[1]], cwd=str(tmp_path), env=runs.env(), check=True,
                 capture_output=True)
  final = runs.final(f'{workdir}/nin/seed1')
  assert final['step'] == 2
  assert not os.path.exists(workdir + '/nin/seed0')  # A dry run runs nothing.


def test_bad_overrides_and_sweep_files_are_one_line_before_anything_runs(tmp_path):
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  p = _sweep(sweep, '--workdir', workdir, '--override', 'optimizer.learning_rat=0.1')
  assert p.returncode == 2 and p.stdout == '', (p.stdout, p.stderr)
  assert p.stderr.startswith('Error: ') and 'learning_rat' in p.stderr
  assert p.stderr.strip().count('\n') == 0 and not os.path.exists(workdir)
  for body, said in (('return None', 'returned None'), ('return []', 'returned []'),
                     ('raise RuntimeError("oops")', 'RuntimeError: oops')):
    (tmp_path / 'bad.py').write_text(f'def get_sweep(arg=None):\n  {body}\n')
    p = _sweep(str(tmp_path / 'bad.py'), '--workdir', workdir)
    assert p.returncode == 2 and said in p.stderr and p.stderr.strip().count('\n') == 0, p.stderr


def test_sweep_runs_skips_finished_reports_failures_and_the_report(tmp_path):
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  p = _sweep(sweep, '--workdir', workdir)
  assert p.returncode == 1, p.stderr  # The broken run failed; the others finished.
  assert 'Sweep: 1 failed, 2 finished' in p.stdout
  assert "Unknown optimizer 'lion'" in open(f'{workdir}/broken/seed0/FAILED').read()
  again = _sweep(sweep, '--workdir', workdir)
  assert again.stdout.count('finished, skipped') == 2 and 'nin/seed0: python' not in again.stdout

  report = subprocess.run([sys.executable, '-m', 'nin', 'report', workdir], cwd=runs.ROOT,
                          env=runs.env(), capture_output=True, text=True, check=True).stdout
  with open(f'{workdir}/report.json') as f:
    rows = {r['group']: r for r in json.load(f)['groups']}
  for key in ('val_accuracy', 'test_accuracy'):
    accs = [runs.final(f'{workdir}/nin/seed{s}')[key] for s in (0, 1)]
    assert rows['nin'][f'{key}_mean'] == np.mean(accs) and rows['nin']['finished'] == 2
    # The 95% interval of two seeds: t = 12.706 with one degree of freedom.
    half = 12.7062 * np.std(accs, ddof=1) / np.sqrt(2)
    assert f'{np.mean(accs):.2%} ± {half:.2%}' in report
  assert rows['nin']['params'] == runs.final(f'{workdir}/nin/seed0')['num_params']
  assert 'test_accuracy_mean' not in rows['broken'] and '- `broken/seed0`: failed' in report
  assert '| broken | plain |' in report and '| 0/1 | — | — |' in report
  # The recipe table, and the warning: the broken run asked for another optimiser, and the
  # two families' dropout differs.
  assert ('| nin | yes | **2 steps** | 32 | **sgd nesterov momentum 0.9** | 0.1 | cosine, 1 warmup '
          'epoch | 0.0005 | 0 | none |') in report
  assert '(they differ in: epochs, optimiser, dropout; see the recipe table)' in report
  assert '| broken | yes | **1** | 32 | **lion** |' in report
  for png in ('accuracy_vs_macs.png', 'accuracy_vs_params.png', 'val_accuracy_curves.png'):
    assert os.path.getsize(os.path.join(workdir, png)) > 1000

  os.rename(f'{workdir}/nin/seed1', f'{workdir}/seed1_moved')
  report = subprocess.run([sys.executable, '-m', 'nin', 'report', workdir], cwd=runs.ROOT,
                          env=runs.env(), capture_output=True, text=True, check=True).stdout
  assert '- `nin/seed1`: missing' in report and '1 of 3 finished' in report


def test_questions_must_name_groups_of_the_sweep(tmp_path):
  extra = ("\n\ndef get_questions(arg=None):\n"
           "  return [{'id': 'Q1', 'question': 'x?', 'a': 'nin', 'b': 'nim'}]")
  sweep, workdir = _sweep_file(tmp_path, extra), str(tmp_path / 'sw')
  p = _sweep(sweep, '--workdir', workdir)
  assert p.returncode == 2 and "names group 'nim'" in p.stderr, p.stderr
  assert p.stderr.strip().count('\n') == 0 and not os.path.exists(workdir)


def test_a_killed_sweep_resumes_the_interrupted_run(tmp_path):
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  proc = subprocess.Popen([sys.executable, '-m', 'nin', 'sweep', f'{sweep}:40', '--workdir', workdir],
                          cwd=runs.ROOT, env=runs.env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True)
  ckpts = f'{workdir}/nin/seed0/checkpoints'
  deadline = time.time() + 120
  while time.time() < deadline and not (os.path.isdir(ckpts) and any(
      d.isdigit() for d in os.listdir(ckpts))):
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(f'{workdir}/nin/seed0/final_metrics.json')
  p = _sweep(f'{sweep}:40', '--workdir', workdir)
  assert 'Resuming from step' in p.stdout, p.stdout
  assert runs.final(f'{workdir}/nin/seed0')['step'] == 40


def _start_and_wait_for_a_checkpoint(sweep, workdir):
  proc = subprocess.Popen([sys.executable, '-m', 'nin', 'sweep', f'{sweep}:100000', '--workdir',
                           workdir], cwd=runs.ROOT, env=runs.env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)
  ckpts = f'{workdir}/nin/seed0/checkpoints'
  deadline = time.time() + 120
  while time.time() < deadline and not (os.path.isdir(ckpts) and any(
      d.isdigit() for d in os.listdir(ckpts))):
    time.sleep(0.05)
  return proc


def test_ctrl_c_to_the_sweep_saves_the_run_and_stops_the_sweep(tmp_path):
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  proc = _start_and_wait_for_a_checkpoint(sweep, workdir)
  proc.send_signal(signal.SIGINT)  # To the sweep alone: it passes the signal on.
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err
  assert 'Sweep stopped by SIGINT during nin/seed0' in err and 'Traceback' not in err, err
  assert 'Interrupted by SIGINT at step' in err  # The run's own save-and-stop line.
  assert not os.path.exists(f'{workdir}/nin/seed0/FAILED')
  assert '[2/3]' not in out  # The sweep did not go on to the next run.


def test_a_sweep_killed_alone_leaves_no_run_training(tmp_path):
  import fcntl
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  proc = _start_and_wait_for_a_checkpoint(sweep, workdir)
  proc.kill()  # SIGKILL to the sweep only; its train.py is told by the kernel (SIGTERM).
  proc.wait()
  fd = os.open(f'{workdir}/nin/seed0', os.O_RDONLY)
  deadline, free = time.time() + 90, False
  while time.time() < deadline and not free:  # A run of 100,000 steps would hold it for long.
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      free = True
    except BlockingIOError:
      time.sleep(0.1)
  os.close(fd)
  assert free, 'the orphaned train.py kept training'
  assert not os.path.exists(f'{workdir}/nin/seed0/final_metrics.json')


def test_a_busy_run_is_skipped_as_running_and_a_stale_failed_marker_goes(tmp_path):
  from nin import workdir as workdir_lib
  sweep, workdir = _sweep_file(tmp_path), str(tmp_path / 'sw')
  fd = workdir_lib.lock(f'{workdir}/nin/seed0')  # As a train.py started elsewhere would.
  assert workdir_lib.status(f'{workdir}/nin/seed0') == 'running'
  p = _sweep(sweep, '--workdir', workdir)
  os.close(fd)
  assert '[1/3] nin/seed0: running, skipped' in p.stdout, p.stdout
  assert not os.path.exists(f'{workdir}/nin/seed0/config.json')  # Not touched.
  assert not os.path.exists(f'{workdir}/nin/seed0/FAILED')
  assert 'Sweep: 1 failed, 1 finished, 1 running' in p.stdout
  # A run that finishes (here, by hand) loses the FAILED marker of an earlier attempt.
  with open(f'{workdir}/nin/seed0/FAILED', 'w') as f:
    f.write('exit code 1\n')
  workdir_lib.write_final(f'{workdir}/nin/seed0', {'step': 2})
  assert workdir_lib.status(f'{workdir}/nin/seed0') == 'finished'
  assert not os.path.exists(f'{workdir}/nin/seed0/FAILED')


def test_the_effective_size_of_a_linear_nin_is_that_of_its_folded_model():
  import jax
  from configs import nin as nin_config
  from models import nin as nin_model
  from nin import registry
  from nin.experiments import results
  config = nin_config.get_config('linear,paper')
  params = registry.build_model(config.model).init(
      jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))['params']
  _, folded = nin_model.fold_linear_nin(params)
  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
  size = results.model_size(config)
  assert size['params'] == count(params) == 966_986
  assert size['effective_params'] == count(folded) < size['params']
  # The quarter-width twin (with BatchNorm): the figure docs/compare_cifar_cpu quotes.
  cpu = results.model_size(nin_config.get_config('linear,cpu'))
  assert (cpu['params'], cpu['effective_params']) == (64_132, 35_084)


def test_the_questions_sweep_pairs_groups_matched_as_it_says():
  """configs/sweeps/questions.py: every question names two of its groups, and the sizes
  its docstring states hold (the 3x3 net within 5% of NiN's mult-adds at both scales)."""
  from nin.experiments import results
  from nin.launch import sweep as sweep_lib
  for variant in ('', 'cpu', 'ladder', 'smoke'):
    spec = 'configs/sweeps/questions.py' + (f':{variant}' if variant else '')
    runs_ = sweep_lib.load_sweep(spec)
    asked = sweep_lib.load_questions(spec, runs_)
    assert len({r['seed'] for r in runs_}) == {'smoke': 2, 'cpu': 7}.get(variant, 5)
    if variant == 'cpu':  # Seeds 0 and 1 chose the learning rates; the other five answer.
      assert all((q['seeds'], q['chose']) == ([2, 3, 4, 5, 6], [0, 1]) for q in asked)
    assert {q['id'] for q in asked} >= {'Q1a', 'Q1c', 'Q1b', 'Q3', 'Q3c', 'Q5'}
    if variant in ('', 'cpu', 'ladder'):
      size = {r['group']: results.model_size(sweep_lib.build_config(r))
              for r in runs_ if r['seed'] == 0 and r['group'] in (
                  'nin', 'plain_matched', 'plain_params', 'nin_relu_only_params')}
      # Matched as the docstring says, within 5%, at every rung of the ladder.
      for group, key in (('plain_matched', 'macs'), ('plain_params', 'params'),
                         ('nin_relu_only_params', 'params')):
        ratio = size[group][key] / size['nin'][key]
        assert 0.95 <= ratio <= 1.05, (variant, group, ratio)
  ladder = {r['group']: sweep_lib.build_config(r) for r in sweep_lib.load_sweep(
      'configs/sweeps/questions.py:ladder') if r['seed'] == 0}
  assert results.model_size(ladder['nin'])['params'] == 64_132
  assert all(c.num_epochs == 9.9 for c in ladder.values())
  # The learning-rate grid: every CPU group at each rate, two seeds, no questions.
  # The ladder's grid: each group at half, once and twice its rate, the ladder's configs
  # otherwise, so that its runs at the chosen rate are the ladder's seeds 0 and 1.
  spec = 'configs/sweeps/questions.py:ladder_lr_grid'
  ladder_grid = sweep_lib.load_sweep(spec)
  assert sweep_lib.load_questions(spec, ladder_grid) == []
  ladder_runs = {(r['group'], r['seed']): sweep_lib.build_config(r).to_dict()
                 for r in sweep_lib.load_sweep('configs/sweeps/questions.py:ladder')
                 if r['seed'] in (0, 1)}
  rates = {}
  for r in ladder_grid:
    config = sweep_lib.build_config(r)
    group = r['group'].split('@')[0]
    rates.setdefault(group, set()).add(config.optimizer.learning_rate)
    if config.optimizer.learning_rate == ladder_runs[group, r['seed']]['optimizer'][
        'learning_rate']:
      assert config.to_dict() == ladder_runs[group, r['seed']], r
  assert rates['nin'] == {0.375, 0.75, 1.5}
  # plain_matched's best sat at the lower edge: its grid goes on down (the corner's does not).
  assert rates['plain_matched'] == {0.375, 0.75, 1.5, 3.0} and len(ladder_grid) == 7 * 3 * 2 + 2
  # The corner: the CPU rung's nets for the ladder's 9.9 epochs, its grid around the CPU
  # rates; the corner itself refuses to train before its grid has chosen.
  spec = 'configs/sweeps/questions.py:corner_lr_grid'
  corner_grid = sweep_lib.load_sweep(spec)
  assert sweep_lib.load_questions(spec, corner_grid) == [] and len(corner_grid) == 5 * 3 * 2
  cpu_models = {r['group']: sweep_lib.build_config(r).model.to_dict() for r in sweep_lib.load_sweep(
      'configs/sweeps/questions.py:cpu') if r['seed'] == 0}
  for r in corner_grid[::2]:
    config = sweep_lib.build_config(r)
    assert config.num_epochs == 9.9 and config.eval_every_epochs == 0.5
    assert config.model.to_dict() == cpu_models[r['group'].split('@')[0]], r['group']
  assert {r['group'].split('@')[0] for r in corner_grid} == {
      'nin', 'nin_relu_only_matched', 'nin_linear_1x1', 'plain_matched', 'plain_params'}
  import pytest
  from nin.errors import ConfigError
  with pytest.raises(ConfigError, match='CORNER_LEARNING_RATES does not name them all yet'):
    sweep_lib.load_sweep('configs/sweeps/questions.py:corner')
  # The rerun: the CPU rung's nin, seeds 0-4, with the cpu sweep's configs.
  rerun = sweep_lib.load_sweep('configs/sweeps/questions.py:rerun')
  assert sweep_lib.load_questions('configs/sweeps/questions.py:rerun', rerun) == []
  cpu_nin = {r['seed']: sweep_lib.build_config(r).to_dict() for r in sweep_lib.load_sweep(
      'configs/sweeps/questions.py:cpu') if r['group'] == 'nin'}
  assert {r['seed']: sweep_lib.build_config(r).to_dict() for r in rerun} == {
      s: c for s, c in cpu_nin.items() if s < 5}
  grid = sweep_lib.load_sweep('configs/sweeps/questions.py:lr_grid')
  assert sweep_lib.load_questions('configs/sweeps/questions.py:lr_grid', grid) == []
  assert len(grid) == 7 * 4 * 2 and {r['seed'] for r in grid} == {0, 1}
  nin_grid = {sweep_lib.build_config(r).optimizer.learning_rate: r['group'] for r in grid
              if r['group'].startswith('nin@') and r['seed'] == 0}
  assert nin_grid == {0.375: 'nin@lr0.375', 0.75: 'nin@lr0.75', 1.5: 'nin@lr1.5', 3.0: 'nin@lr3'}
  cpu = {r['group']: sweep_lib.build_config(r) for r in sweep_lib.load_sweep(
      'configs/sweeps/questions.py:cpu') if r['seed'] == 0}
  assert results.model_size(cpu['nin'])['params'] == 17_244
  assert cpu['nin_dropout'].model.dropout_rate == 0.5 and cpu['nin'].model.dropout_rate == 0.0
  assert all(c.num_epochs == 5.0 and c.bn_stats_batches == 4 for c in cpu.values())


def test_key_value_flags_parse_as_train_py_does_and_name_themselves_in_errors():
  import pytest
  from nin.launch import sweep as sweep_lib
  from nin.errors import ConfigError
  assert sweep_lib.parse_overrides(['a.b=1', 'c=/x', 'd=(1, 2)'], literals=True) == {
      'a.b': 1, 'c': '/x', 'd': (1, 2)}
  # Config overrides stay text and are parsed by each field's type, as train.py's flags:
  # a number for a text field, a table for a field that holds a table's name.
  overrides = sweep_lib.parse_overrides(
      ['optimizer.learning_rate=0.25', 'dataset.data_dir=2024', 'model.blocks=((5,(96,)),)'])
  run = {'group': 'g', 'seed': 3, 'config': 'configs/nin.py:smoke', 'overrides': overrides}
  config = sweep_lib.build_config(run)
  assert config.optimizer.learning_rate == 0.25 and config.seed == 3
  assert config.dataset.data_dir == '2024' and config.model.blocks == '((5,(96,)),)'
  with pytest.raises(ConfigError, match="unknown config field 'optimizer.learning_rat'; did you"):
    sweep_lib.build_config(dict(run, overrides={'optimizer.learning_rat': '1'}))
  with pytest.raises(ConfigError, match='learning_rate'):
    sweep_lib.load_sweep('configs/sweeps/compare.py:digits', {'optimizer.learning_rate': 'fast'})
  with pytest.raises(ConfigError, match=r"--override 'a\.b' is not KEY=VALUE"):
    sweep_lib.parse_overrides(['a.b'])
  with pytest.raises(ConfigError, match=r"--slurm_extra 'account' is not KEY=VALUE \(e\.g\. acc"):
    sweep_lib.parse_overrides(['account'], 'slurm_extra', 'account=myproject')


def test_the_chosen_learning_rates_are_the_committed_grids_and_its_runs_are_reused():
  """LEARNING_RATES in configs/sweeps/questions.py is what the committed, complete grid
  (docs/compare_cifar_cpu/lr_grid) chose on validation; the cpu rung trains every group at
  its rate, its seeds 0 and 1 are the grid's runs at that rate (the same config, so they
  are reused), the committed rung (docs/compare_cifar_cpu/questions) is those runs, and the
  ladder carries the rates to its larger budget."""
  from nin.launch import sweep as sweep_lib
  from nin import workdir as workdir_lib
  from nin.train import run_config
  spec = 'configs/sweeps/questions.py'
  sweep_file = sweep_lib._load_module(spec, 'questions_sweep')
  chosen = sweep_file.LEARNING_RATES
  docs = os.path.join(runs.ROOT, 'docs', 'compare_cifar_cpu')
  with open(os.path.join(docs, 'lr_grid', 'report.json')) as f:
    grid_report = json.load(f)
  assert all(g['finished'] == g['expected'] == 2 for g in grid_report['groups'])
  assert chosen == {c['group']: c['chosen'] for c in grid_report['learning_rates']}
  grid = {(r['group'], r['seed']): r for r in sweep_lib.load_sweep(spec + ':lr_grid')}
  for r in sweep_lib.load_sweep(spec + ':cpu'):
    config = sweep_lib.build_config(r)
    rate = chosen[r['group']]
    assert config.optimizer.learning_rate == rate, r['group']
    if r['seed'] in (0, 1):
      twin = grid[(sweep_file.lr_group(r['group'], rate), r['seed'])]
      assert config.to_dict() == sweep_lib.build_config(twin).to_dict(), r
  # The committed cpu rung is these runs (on the data folder its runs were given): each
  # run's config is the sweep's, and seeds 0 and 1 are the grid's own run files.
  def committed_config(*path):
    with open(os.path.join(docs, *path, 'config.json')) as f:
      return json.load(f)
  data = {'dataset.manual_dir': 'CIFAR', 'dataset.verify_checksum': 'False'}
  for r in sweep_lib.load_sweep(spec + ':cpu', data):
    # Brought to today's fields, as a resumed run reads it (fields added since take the
    # defaults that train as the run did, e.g. deterministic=False).
    run = run_config.upgrade(committed_config('questions', r['group'], f"seed{r['seed']}"))
    assert run == json.loads(workdir_lib.config_to_json(sweep_lib.build_config(r))), r
    assert run['optimizer']['learning_rate'] == chosen[r['group']], r
    if r['seed'] in (0, 1):
      twin = sweep_file.lr_group(r['group'], chosen[r['group']])
      assert run == run_config.upgrade(committed_config('lr_grid', twin, f"seed{r['seed']}")), r
  for r in sweep_lib.load_sweep(spec + ':ladder'):
    assert sweep_lib.build_config(r).optimizer.learning_rate == chosen[r['group']], r


def test_the_ladders_grid_is_its_sweeps_runs_and_reuses_the_ladders_seeds_0_and_1():
  """docs/compare_cifar_cpu/ladder_lr_grid (published while it trains): every committed run is
  the sweep's config, and its runs at each group's current rate are the ladder's own seeds 0
  and 1, file for file, so that the grid trains only its off-centre rates."""
  from nin.launch import sweep as sweep_lib
  from nin import workdir as workdir_lib
  from nin.train import run_config
  spec = 'configs/sweeps/questions.py'
  sweep_file = sweep_lib._load_module(spec, 'questions_sweep')
  docs = os.path.join(runs.ROOT, 'docs', 'compare_cifar_cpu')
  data = {'dataset.manual_dir': 'CIFAR', 'dataset.verify_checksum': 'False'}
  planned = sweep_lib.load_sweep(spec + ':ladder_lr_grid', data)
  committed = 0
  for r in planned:
    run_dir = os.path.join(docs, 'ladder_lr_grid', r['group'], f"seed{r['seed']}")
    if not os.path.exists(run_dir):
      continue
    committed += 1
    with open(os.path.join(run_dir, 'config.json')) as f:
      assert run_config.upgrade(json.load(f)) == json.loads(
          workdir_lib.config_to_json(sweep_lib.build_config(r))), r
    group, rate = r['group'].split('@lr')
    if float(rate) == sweep_file.LEARNING_RATES[group]:
      twin = os.path.join(docs, 'ladder', group, f"seed{r['seed']}")
      for name in os.listdir(twin):
        with open(os.path.join(twin, name)) as a, open(os.path.join(run_dir, name)) as b:
          assert a.read() == b.read(), (r['group'], r['seed'], name)
  # The 14 centre runs at least, and the report lists every planned run.
  assert committed >= 14
  with open(os.path.join(docs, 'ladder_lr_grid', 'report.json')) as f:
    groups = json.load(f)['groups']
  assert sum(g['expected'] for g in groups) == len(planned) == 44
  assert sum(g['finished'] for g in groups) == committed


def test_muons_grid_centres_on_the_committed_muon_runs():
  """configs/sweeps/muon.py:lr_grid moves Muon's rate only, and its runs at 0.24 are the
  committed Muon runs (docs/time_to_accuracy/nin_fast_quarter_muon), so that they are reused."""
  from nin.launch import sweep as sweep_lib
  from nin import workdir as workdir_lib
  from nin.train import run_config
  spec = 'configs/sweeps/muon.py:lr_grid'
  grid = sweep_lib.load_sweep(spec)
  assert sweep_lib.load_questions(spec, grid) == [] and len(grid) == 4 * 2
  data = {'dataset.manual_dir': 'CIFAR', 'dataset.verify_checksum': 'False'}
  rates = set()
  for r in sweep_lib.load_sweep(spec, data):
    config = sweep_lib.build_config(r)
    rates.add(config.optimizer.learning_rate)
    assert config.optimizer.name == 'muon' and config.optimizer.sgd_learning_rate == 1.5
    assert config.model.width_divisor == 4 and config.num_epochs == 9.9
    if r['group'] == 'nin_muon@lr0.24':
      with open(os.path.join(runs.ROOT, 'docs', 'time_to_accuracy', 'nin_fast_quarter_muon',
                             f"seed{r['seed']}", 'config.json')) as f:
        committed = run_config.upgrade(json.load(f))
      assert committed == json.loads(workdir_lib.config_to_json(config)), r
  assert rates == {0.06, 0.12, 0.24, 0.48}
  import pytest
  from nin.errors import ConfigError
  with pytest.raises(ConfigError, match="Unknown sweep variant 'cpu'; valid: lr_grid, ladder"):
    sweep_lib.load_sweep('configs/sweeps/muon.py:cpu')
  # The answer: Muon at the chosen rate against the ladder's own `nin` runs, whose seeds 2-4
  # are committed and are copied in, so their configs must be the ladder's to the last field.
  muon = sweep_lib._load_module('configs/sweeps/muon.py', 'muon_sweep')
  answer = sweep_lib.load_sweep('configs/sweeps/muon.py:ladder', data)
  # Before its grid has chosen, the answer refuses to train Muon at a rate nobody chose
  # (this module object is this test's own: the file itself keeps its choice).
  chosen, muon.LEARNING_RATE_CHOSEN = muon.LEARNING_RATE_CHOSEN, None
  with pytest.raises(ValueError, match='LEARNING_RATE_CHOSEN is not set yet: run '
                     'muon.py:lr_grid'):
    muon.get_sweep('ladder')
  assert len(muon.get_sweep('lr_grid')) == 8  # The grid itself needs no choice.
  muon.LEARNING_RATE_CHOSEN = chosen
  ladder = {(r['group'], r['seed']): r
            for r in sweep_lib.load_sweep('configs/sweeps/questions.py:ladder', data)}
  assert sorted({r['seed'] for r in answer}) == [2, 3, 4, 5, 6] and len(answer) == 10
  (question,) = sweep_lib.load_questions('configs/sweeps/muon.py:ladder', answer)
  assert question['seeds'] == [2, 3, 4, 5, 6] and question['chose'] == [0, 1]
  for r in answer:
    config = json.loads(workdir_lib.config_to_json(sweep_lib.build_config(r)))
    assert config['eval_every_epochs'] == 0.5 and config['model']['width_divisor'] == 4
    if r['group'] == 'nin_muon':
      assert config['optimizer']['name'] == 'muon'
      assert config['optimizer']['learning_rate'] == muon.LEARNING_RATE_CHOSEN == 0.12
      continue
    assert r['group'] == 'nin'
    # The ladder itself trains seeds 0-4 so far; its seeds 5-6 are these runs' configs.
    ours = json.loads(workdir_lib.config_to_json(sweep_lib.build_config(
        {**ladder[('nin', 2)], 'seed': r['seed']})))
    assert config == ours and config['optimizer']['name'] == 'sgd'
    committed = os.path.join(runs.ROOT, 'docs', 'compare_cifar_cpu', 'ladder', 'nin',
                             f"seed{r['seed']}", 'config.json')
    if os.path.exists(committed):
      with open(committed) as f:
        assert run_config.upgrade(json.load(f)) == config, r
