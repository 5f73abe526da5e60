"""Reports: accuracy against compute, and committed reports re-rendered from their run files."""
import json
import os
import shutil

import pytest

import runs

from configs import plain as plain_config
from nin.experiments import questions, recipe, report, results
from nin import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Committed reports that ship their runs' small files (config, metrics, final summary).
COMMITTED = ('docs/time_to_accuracy', 'docs/compare_cifar_cpu/questions',
             'docs/compare_cifar_cpu/lr_grid', 'docs/compare_cifar_cpu/ladder',
             'docs/compare_cifar_cpu/rerun', 'docs/time_to_accuracy/muon_lr_grid',
             'docs/time_to_accuracy/muon_ladder', 'docs/compare_cifar_cpu/ladder_lr_grid',
             'docs/precision_cifar_cpu/precision')


def _fake_run(root, group, seed, evals, reached):
  run_dir = os.path.join(root, group, f'seed{seed}')
  os.makedirs(run_dir)
  config = plain_config.get_config('airbench')
  config.seed = seed
  config.log_every_steps = 10 + sum(map(ord, group))  # Each group a config of its own.
  with open(os.path.join(run_dir, workdir_lib.CONFIG_FILE), 'w') as f:
    f.write(workdir_lib.config_to_json(config))
  with open(os.path.join(run_dir, workdir_lib.METRICS_FILE), 'w') as f:
    for step, acc in evals:
      f.write(json.dumps({'kind': 'eval', 'step': step, 'epoch': step / 10, 'val_accuracy': acc,
                          'val_loss': 1 - acc, 'train_flops': 1e13 * step,
                          'train_time_sec': 3.0 * step}) + '\n')
  final = {'step': evals[-1][0], 'epochs': evals[-1][0] / 10, 'val_accuracy': evals[-1][1],
           'test_accuracy': evals[-1][1] - 0.01, 'test_accuracy_tta': evals[-1][1],
           'train_time_sec': 3.0 * evals[-1][0], 'images_per_sec': 100.0, 'devices': 1,
           'device_kind': 'cpu', 'platform': 'cpu', 'time_to_val_accuracy': reached}
  workdir_lib.write_final(run_dir, final)


def _reached(step):
  return {'step': step, 'epoch': step / 10, 'train_flops': 1e13 * step,
          'train_time_sec': 3.0 * step}


def test_time_to_accuracy_table_and_compute_plots(tmp_path):
  root = str(tmp_path)
  _fake_run(root, 'fast', 0, [(10, 0.55), (20, 0.72)], {'0.5': _reached(10), '0.7': _reached(20)})
  _fake_run(root, 'fast', 1, [(10, 0.52), (20, 0.66)], {'0.5': _reached(10)})
  text = report.write_report(root)
  # 0.5: both seeds at step 10 (30 s, 0.1 PFLOP); 0.7: one of two seeds, at step 20.
  assert '| fast | 30 s, 0.1 PFLOP | 60 s, 0.2 PFLOP (1/2 seeds) |' in text, text
  assert '| 50% | 70% |' in text
  for name in ('val_accuracy_vs_flops.png', 'val_accuracy_vs_time.png'):
    assert os.path.getsize(tmp_path / name) > 1000 and f'({name})' in text
  # The fast protocol's recipe columns, and test accuracy with TTA beside the plain one.
  assert 'lookahead every 5' in text and 'alternating flips' in text
  # Mean ± the 95% half-width of two seeds: 12.706 * 0.0424 / sqrt(2) = 38.12 points.
  assert '| 69.00% ± 38.12% | 68.00% ± 38.12% | 69.00% ± 38.12% |' in text
  # Per run: test accuracy ± its binomial standard error when the test count is known.
  assert '| fast/seed0 | 72.00% | 71.00% | 72.00% | — |' in text


def test_the_report_lists_versions_and_warns_when_runs_differ(tmp_path):
  root = str(tmp_path)
  for seed, jax_version in ((0, '0.9.0'), (1, '0.9.1')):
    _fake_run(root, 'fast', seed, [(10, 0.5)], {})
    run_dir = os.path.join(root, 'fast', f'seed{seed}')
    final = workdir_lib.read_final(run_dir)
    final['provenance'] = {'versions': {'jax': jax_version, 'flax': '0.12.0'},
                           'commit': 'abcdef1234567890', 'dirty': seed == 1}
    workdir_lib.write_final(run_dir, final)
  text = report.write_report(root)
  assert ('**Warning: the runs of this table ran with different library versions** (2 sets: '
          'jax 0.9.0, flax 0.12.0; jax 0.9.1, flax 0.12.0)') in text
  assert 'code: abcdef123456, abcdef123456 with uncommitted changes.' in text
  os.remove(os.path.join(root, 'fast', 'seed1', workdir_lib.FINAL_FILE))
  text = report.write_report(root)
  assert 'Warning: the runs' not in text and '- Libraries: jax 0.9.0, flax 0.12.0; ' in text


def _finished(group, seed, test, val):
  from configs import nin as nin_config
  config = nin_config.get_config('fast')
  config.model.width_divisor = 8
  config.seed = seed
  config.optimizer.learning_rate = 0.1 * (1 + len(group) + ord(group[0]) % 7)  # Groups differ.
  return {'name': f'{group}/seed{seed}', 'group': group, 'seed': seed, 'status': 'finished',
          'config': config, 'final': {'test_accuracy': test, 'val_accuracy': val, 'epochs': 5.0}}


def test_questions_are_answered_with_paired_intervals_and_a_verdict():
  a = {0: 0.60, 1: 0.70, 2: 0.65}
  b = {0: 0.55, 1: 0.66, 2: 0.60}   # A - B per seed: 5, 4, 5 points.
  c = {0: 0.62, 1: 0.66, 2: 0.67}   # A - C: -2, 4, -2 points.
  runs = ([_finished('a', s, v, v) for s, v in a.items()] +
          [_finished('b', s, v, v - 0.01) for s, v in b.items()] +
          [_finished('c', s, v, v) for s, v in c.items()] + [_finished('d', 0, 0.5, 0.5)])
  asked = [{'id': 'Q1', 'question': 'a or b?', 'a': 'a', 'b': 'b'},
           {'id': 'Q2', 'question': 'a or c?', 'a': 'a', 'b': 'c'},
           {'id': 'Q3', 'question': 'a or d?', 'a': 'a', 'b': 'd'}]
  q1, q2, q3 = questions.answer(asked, runs, rows=[])
  # Paired: mean 4.667 points, half-width 4.303 * 0.5774 / sqrt(3) = 1.434 points.
  assert q1['test_accuracy']['paired'] and q1['test_accuracy']['n'] == 3
  assert q1['test_accuracy']['mean'] == pytest.approx(0.046667, abs=1e-6)
  assert q1['test_accuracy']['half_width'] == pytest.approx(0.014342, abs=1e-6)
  assert q1['val_accuracy']['mean'] == pytest.approx(0.056667, abs=1e-6)
  # Three questions asked: Q1's p (0.0051, paired t on 5, 4, 5 points) is the smallest, so
  # Holm's method multiplies it by 3: Q3, which has no test (one seed of d), still counts,
  # as p = 1, so that findings are adjusted for every question asked.
  assert q1['test_accuracy']['p'] == pytest.approx(0.005063, abs=1e-6)
  assert q1['test_accuracy']['p_holm'] == pytest.approx(3 * q1['test_accuracy']['p'])
  assert (q1['test_accuracy']['a_won'], q1['test_accuracy']['n']) == (3, 3)
  assert q1['verdict'] == ('a is ahead at this budget (a at 1/8 width against b at 1/8 width, '
                           '5 epochs, 45,000 images)')
  assert q2['verdict'].startswith('not resolved at this budget')  # Mean 0, a spread of 3.5 points.
  assert q3['verdict'].startswith('no interval')    # One seed of d: nothing to pair.
  assert 'p_holm' not in q3['test_accuracy']        # Its p = 1 only fills Holm's count.
  lines = questions.section([q1, q2, q3])
  assert ('| **Q1** a or b? | a | b | — / — (—) | — / — (—) | +4.67 [+3.23, +6.10] | 0.015 '
          '| 3 of 3 | +5.67 [+4.23, +7.10] | 3 paired, r +1.00 | a is ahead at this budget (a at 1/8 '
          'width against b at 1/8 width, 5 epochs, 45,000 images) |') in lines, lines
  assert any('| **Q3** a or d? ' in line and '| +15.00 | — | — |' in line for line in lines)
  assert any('adjusted by Holm\'s method for the 3 questions' in line for line in lines)


def test_a_question_is_answered_on_its_own_seeds_beside_the_rerun_spread():
  """Seeds that chose a setting answer nothing; a finding under the largest rerun move says
  so; where the seeds move the groups apart (r <= 0), the interval is Welch's."""
  a = {0: 0.90, 1: 0.10, 2: 0.60, 3: 0.70, 4: 0.65, 5: 0.64}
  b = {0: 0.10, 1: 0.90, 2: 0.55, 3: 0.66, 4: 0.60, 5: 0.57}  # Seeds 2-5: A - B 5, 4, 5, 7.
  runs = ([_finished('a', s, v, v) for s, v in a.items()] +
          [_finished('b', s, v, v) for s, v in b.items()])
  asked = [{'id': 'Q1', 'question': 'a or b?', 'a': 'a', 'b': 'b', 'seeds': [2, 3, 4, 5],
            'chose': [0, 1]}]
  q1, = questions.answer(asked, runs, rows=[])
  t = q1['test_accuracy']
  assert t['paired'] and t['n'] == t['pairs'] == 4 and t['r'] > 0  # Seeds 0 and 1 left out.
  assert t['mean'] == pytest.approx(0.0525) and q1['verdict'].startswith('a is ahead')
  lines = questions.section([q1])
  assert ('Answered on seeds 2, 3, 4 and 5 only: seeds 0 and 1 chose the learning rates, and '
          'a run that chose a setting does not also judge it.') in lines
  # A rerun moved one run by up to 6 points: the 5.25-point finding says it is smaller.
  spread = {'pairs': 2, 'mean': 0.04, 'max': 0.06, 'folders': ['x']}
  q1, = questions.answer(asked, runs, rows=[], reruns=spread)
  assert q1['verdict'].endswith('; smaller than a rerun alone moved one run (up to 6.00 points)')
  assert q1['ahead'] == 'a'
  assert any(line.startswith('Rerun spread: 2 runs trained again with the same config and seed '
                             'from another commit moved test accuracy by 4.00 points on average, '
                             'at most 6.00 (x).') for line in questions.section([q1], spread))
  # Seeds that move the groups apart: Welch's interval, over all values of each side.
  c = {2: 0.56, 3: 0.53, 4: 0.58, 5: 0.57}
  q2, = questions.answer([dict(asked[0], id='Q2', b='c')],
                         runs + [_finished('c', s, v, v) for s, v in c.items()], rows=[])
  t = q2['test_accuracy']
  assert not t['paired'] and t['r'] < 0 and '4, Welch, r ' in questions._test(t)


def test_the_rerun_spread_counts_each_run_once_and_only_reruns_from_another_commit(tmp_path):
  def run(folder, seed, commit, test):
    _fake_run(str(tmp_path / folder), 'nin', seed, [(10, test + 0.01)], {})
    final_dir = tmp_path / folder / 'nin' / f'seed{seed}'
    final = workdir_lib.read_final(str(final_dir))
    workdir_lib.write_final(str(final_dir), dict(final, provenance={'commit': commit}))
  run('grid', 0, 'aaaa111', 0.60)
  run('rung', 0, 'aaaa111', 0.60)    # The grid's run, copied: one run, not a rerun.
  run('rerun', 0, 'bbbb222', 0.62)   # Trained again from another commit: 2 points.
  run('rerun', 1, 'bbbb222', 0.70)   # No earlier run of seed 1: nothing to pair.
  run('rung', 1, 'cccc333', 0.695)   # ... now there is: 0.5 points.
  pairs = results.reruns([str(tmp_path)])
  assert sorted(round(100 * p['test'], 6) for p in pairs) == [0.5, 2.0]
  spread = results.rerun_spread([str(tmp_path)])
  assert (spread['pairs'], spread['mean'], spread['max']) == (2, pytest.approx(0.0125),
                                                              pytest.approx(0.02))
  assert results.rerun_spread([str(tmp_path / 'grid')]) is None


def test_the_recipe_warning_names_dropout_when_it_differs():
  from configs import nin as nin_config
  rows = []
  for rate in (0.0, 0.5):
    config = nin_config.get_config('fast')
    config.model.dropout_rate = rate
    rows.append({'recipe': recipe.columns(config)})
  assert recipe.differences(rows) == ['dropout']
  assert recipe.differences(rows[:1] * 2) == []


@pytest.mark.parametrize('folder', COMMITTED)
def test_committed_reports_re_render_from_their_run_files(folder, tmp_path, monkeypatch):
  """Every figure of a committed report is read from the run files committed beside it (and
  the rerun spread from the folders its report.json names, relative to the repository)."""
  src = os.path.join(ROOT, folder)
  dst = tmp_path / os.path.basename(folder)
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns('*.png', '*.md', 'report.json'))
  runs = [os.path.relpath(d, dst) for d, _, files in os.walk(dst) if workdir_lib.CONFIG_FILE in files]
  assert runs, f'{folder} ships no run files'
  with open(os.path.join(src, 'report.json')) as f:
    spread = json.load(f).get('reruns')
  monkeypatch.chdir(ROOT)
  text = report.write_report(str(dst), figures=False,  # The text is what figures are read from.
                             reruns=spread['folders'] if spread else ())
  with open(os.path.join(src, 'report.md')) as f:
    assert text == f.read()


def test_the_committed_budgets_table_is_read_from_both_rungs_run_files(monkeypatch):
  """docs/compare_cifar_cpu/budgets.md: each question at the CPU rung and the ladder's next."""
  from nin.experiments import ladder
  monkeypatch.chdir(ROOT)  # Its columns are named by the rungs' folders, as committed.
  rungs = ['docs/compare_cifar_cpu/questions', 'docs/compare_cifar_cpu/ladder']
  with open('docs/compare_cifar_cpu/budgets.md') as f:
    assert ladder.markdown(rungs, ['docs']) == f.read()


def test_the_readme_demo_figures_are_those_of_the_committed_runs():
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = f.read()
  for family in ('nin', 'plain', 'googlenet'):
    final = workdir_lib.read_final(os.path.join(ROOT, 'docs', 'digits_demo', f'{family}_digits'))
    for key in ('val_accuracy', 'test_accuracy'):
      assert f'{100 * final[key]:.2f}%' in readme, (family, key)


def test_the_gap_table_is_read_from_the_reference_logs_and_the_run_files():
  """docs/time_to_accuracy: airbench94's own code and this project's, on the same images."""
  folder = os.path.join(ROOT, 'docs/time_to_accuracy')
  with open(os.path.join(folder, 'README.md')) as f:
    text = f.read()
  logs = sorted(n for n in os.listdir(os.path.join(folder, 'reference')) if n.endswith('.log'))
  assert logs == ['seed0.log', 'seed1.log']
  for name in logs:
    with open(os.path.join(folder, 'reference', name)) as f:
      # Its own table's last row: | run | eval | loss | acc | test | test with TTA | seconds |
      row = next(line for line in f if '| eval |' in ' '.join(line.split()))
    cells = [c.strip() for c in row.split('|')]
    plain, tta = float(cells[5]), float(cells[6])
    assert f"| `reference/{name}` | airbench94's | 50,000 | {plain:.2%} | {tta:.2%} |" in text
  for run, images in (('airbench_train50k/seed0', '50,000'), ('airbench_train50k/seed1', '50,000'),
                      ('airbench/seed0', '45,000')):
    final = workdir_lib.read_final(os.path.join(folder, run))
    assert (f"| `{run}` | this project's | {images} | {final['test_accuracy']:.2%} | "
            f"{final['test_accuracy_tta']:.2%} |") in text, run


def test_a_learning_rate_grid_names_each_groups_best_rate_on_validation(tmp_path):
  root = str(tmp_path / 'grid')
  # nin is best at 1.5 on validation; plain at 0.75 (its test figures would say otherwise:
  # _fake_run's test accuracy is validation's minus one point, so they cannot decide).
  for group, finals in (('nin', {0.75: 0.60, 1.5: 0.66, 3.0: 0.62}),
                        ('plain', {0.75: 0.71, 1.5: 0.70, 3.0: 0.40})):
    for rate, val in finals.items():
      for seed in (0, 1):
        _fake_run(root, f'{group}@lr{rate:g}', seed, [(10, val + 0.01 * seed)], {})
  # wide's grid is part-trained: 0.75 done, one seed of 1.5 finished and the other started
  # but not finished, so its higher mean at 1.5 chooses nothing yet.
  _fake_run(root, 'wide@lr0.75', 0, [(10, 0.50)], {})
  _fake_run(root, 'wide@lr0.75', 1, [(10, 0.52)], {})
  _fake_run(root, 'wide@lr1.5', 0, [(10, 0.70)], {})
  os.makedirs(os.path.join(root, 'wide@lr1.5', 'seed1'))
  with open(os.path.join(root, 'wide@lr1.5', 'seed1', workdir_lib.CONFIG_FILE), 'w') as f:
    f.write(workdir_lib.config_to_json(plain_config.get_config('airbench')))
  text = report.write_report(root, figures=False)
  with open(os.path.join(root, 'report.json')) as f:
    chosen = {c['group']: c['chosen'] for c in json.load(f)['learning_rates']}
  assert chosen == {'nin': 1.5, 'plain': 0.75, 'wide': None}
  assert '| nin | 60.50% | **66.50%** | 62.50% | 1.5 |' in text
  assert "| plain | **71.50%** | 70.50% | 40.50% | 0.75 (grid's edge) |" in text
  assert '| wide | 51.00% | 70.00% | — | not yet (3 of 4 runs) |' in text
  assert 'A group whose grid has runs still to finish has no choice yet.' in text


def test_the_ladder_puts_each_budgets_answer_side_by_side(tmp_path):
  from nin.experiments import ladder
  asked = [{'id': 'Q1', 'question': 'a or b?', 'a': 'a', 'b': 'b'},
           {'id': 'Q2', 'question': 'a or c?', 'a': 'a', 'b': 'c'}]
  # Budget 1: a is ahead of b on every seed, c ties with a. Budget 2: b is ahead of a.
  finals = {'small': {'a': [0.60, 0.70, 0.65], 'b': [0.55, 0.66, 0.60], 'c': [0.62, 0.66, 0.67]},
            'large': {'a': [0.80, 0.81, 0.79], 'b': [0.85, 0.86, 0.84], 'c': [0.70, 0.71, 0.70]}}
  roots = []
  for budget, groups in finals.items():
    root = str(tmp_path / budget)
    names = []
    for group, values in groups.items():
      for seed, v in enumerate(values):
        _fake_run(root, group, seed, [(10, v + 0.01)], {})  # Test accuracy: v.
        names.append({'group': group, 'seed': seed, 'name': f'{group}/seed{seed}'})
    with open(os.path.join(root, 'sweep.json'), 'w') as f:
      json.dump({'sweep': 'x', 'questions': asked, 'runs': names}, f)
    roots.append(root)
  small, large = (ladder.answers(r) for r in roots)
  assert (small['Q1']['ahead'], large['Q1']['ahead']) == ('a', 'b')
  assert (small['Q2']['ahead'], large['Q2']['ahead']) == (None, 'a')
  assert ladder.movement([small['Q1'], large['Q1']]).startswith('the ranking moved')
  assert ladder.movement([small['Q2'], large['Q2']]) == 'a side is ahead at some budgets only'
  assert ladder.movement([large['Q2'], large['Q2']]) == 'the same side is ahead at every budget'
  assert ladder.movement([small['Q2'], None]) == ('answered at fewer than two budgets: '
                                                  'nothing to compare yet')
  text = ladder.markdown(roots)
  assert ('| **Q1** a or b? (A: a, B: b) | +4.67 [+3.23, +6.10], p 0.01, 3 paired, r +1.00: '
          'a is ahead') in text, text
  assert text.split('\n\n## ')[0].rstrip().endswith('| a side is ahead at some budgets only |')
  # One evaluation per run: none can be judged for levelling off.
  assert f'| `{roots[0]}` | 9 | 0 of 0 | — |' in text, text
  # A rung still training: c's fourth seed has not finished at the larger budget, so its
  # cell names the seeds it has and the sentence is marked as not final.
  with open(os.path.join(roots[1], 'sweep.json')) as f:
    manifest = json.load(f)
  manifest['runs'].append({'group': 'c', 'seed': 3, 'name': 'c/seed3'})
  with open(os.path.join(roots[1], 'sweep.json'), 'w') as f:
    json.dump(manifest, f)
  large = ladder.answers(roots[1])
  assert (large['Q1']['progress'], large['Q2']['progress']) == ((3, 3), (3, 4))
  assert ladder.movement([small['Q1'], large['Q1']]) == (
      'the ranking moved: opposite sides are ahead at different budgets')
  assert ladder.movement([small['Q2'], large['Q2']]) == (
      "a side is ahead at some budgets only (so far: a budget's runs have not all finished)")
  text = ladder.markdown(roots)
  assert '45,000 images) (3 of 4 seeds so far) |' in text, text
  # One seed (the smaller budget's sweep cut to seed 0) gives a difference but no interval:
  # nothing to compare across budgets yet.
  with open(os.path.join(roots[0], 'sweep.json')) as f:
    manifest = json.load(f)
  manifest['runs'] = [r for r in manifest['runs'] if r['seed'] == 0]
  with open(os.path.join(roots[0], 'sweep.json'), 'w') as f:
    json.dump(manifest, f)
  one_seed = ladder.answers(roots[0])
  assert one_seed['Q1']['test_accuracy']['low'] is None and one_seed['Q1']['ahead'] is None
  assert ladder.movement([one_seed['Q1'], large['Q1']]) == (
      'answered at fewer than two budgets: nothing to compare yet')


def test_the_ladder_says_how_many_runs_levelled_off_and_how_far_the_others_moved(tmp_path):
  from nin.experiments import ladder
  root = str(tmp_path)
  _fake_run(root, 'a', 0, [(10, 0.50), (40, 0.70), (45, 0.705), (50, 0.709)], {})  # Flat.
  _fake_run(root, 'a', 1, [(10, 0.50), (40, 0.68), (45, 0.70), (50, 0.71)], {})    # 3 points.
  _fake_run(root, 'b', 0, [(10, 0.50), (40, 0.60), (50, 0.615)], {})               # 1.5 points.
  _fake_run(root, 'b', 1, [(10, 0.50), (50, 0.60)], {})                            # Not judged.
  lv = ladder.levelling(root)
  assert (lv['finished'], lv['judged'], lv['levelled']) == (4, 3, 1)
  assert lv['still_moving'] == pytest.approx([0.015, 0.03])
  assert f'| `{root}` | 4 | 1 of 3 | 1.5 to 3.0 points |' in ladder.markdown([root, root])


def underfit_table(root='docs/compare_cifar_cpu') -> list:
  """docs/compare_cifar_cpu/README.md's table of training against validation accuracy, per
  group and rung, read from the committed final_metrics.json (means over the seeds)."""
  rungs = ('questions', 'ladder')
  means = {}
  for rung in rungs:
    for r in results.collect(os.path.join(runs.ROOT, root, rung)):
      f = r.get('final')
      if f:
        means.setdefault(r['group'], {}).setdefault(rung, []).append(
            (f['train_accuracy'], f['val_accuracy']))
  lines = ['| group | CPU rung: training / validation | ladder: training / validation |',
           '|---|---:|---:|']
  for group, by_rung in means.items():
    cells = []
    for rung in rungs:
      pairs = by_rung.get(rung, [])
      train, val = (100 * sum(p[i] for p in pairs) / len(pairs) for i in (0, 1))
      cells.append(f'{train:.1f}% / {val:.1f}%')
    lines.append(f'| `{group}` | ' + ' | '.join(cells) + ' |')
  return lines


def test_the_underfitting_table_is_read_from_the_run_files():
  text = open(os.path.join(runs.ROOT, 'docs/compare_cifar_cpu/README.md')).read()
  assert '\n'.join(underfit_table()) in text


def test_the_docs_muon_figures_are_read_from_the_committed_runs():
  """docs/time_to_accuracy: Muon against SGD at its tuned rate (the ladder's NiN runs),
  and the share of Newton-Schulz in a step's FLOPs."""
  import json
  import os
  import jax
  import jax.numpy as jnp
  import runs
  from nin.experiments import stats
  from nin.train import optim, run_config, steps, summary
  root = os.path.join(runs.ROOT, 'docs')
  def values(folder, seeds, key):
    return {s: json.load(open(os.path.join(root, folder, f'seed{s}', 'final_metrics.json')))[key]
            for s in seeds}
  text = open(os.path.join(root, 'time_to_accuracy', 'README.md')).read()
  for key, words in (('val_accuracy', 'validation +{mean} ({low} to\n{high})'),
                     ('test_accuracy', 'test +{mean} ({low} to {high}: not resolved)'),
                     ('test_accuracy_tta', 'test with TTA +{mean}\n({low} to {high})')):
    d = stats.difference(values('time_to_accuracy/nin_fast_quarter_muon', (0, 1), key),
                         values('compare_cifar_cpu/ladder/nin', range(5), key))
    assert d['paired'] and d['n'] == 2
    f = {k: f'{100 * d[k]:+.2f}' for k in ('mean', 'low', 'high')}
    f['mean'] = f['mean'].lstrip('+')
    assert ' '.join(words.format(**f).split()) in ' '.join(text.split()), (key, f)
  muon = run_config.load(os.path.join(root, 'time_to_accuracy/nin_fast_quarter_muon/seed0'))
  sgd = run_config.load(os.path.join(root, 'compare_cifar_cpu/ladder/nin/seed0'))
  assert (muon.model.to_dict(), muon.dataset.to_dict(), muon.num_epochs, muon.seed) == (
      sgd.model.to_dict(), sgd.dataset.to_dict(), sgd.num_epochs, sgd.seed)
  model = steps.model_for(muon)
  shapes = jax.eval_shape(lambda: model.init(
      {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)},
      jnp.zeros((1, 32, 32, 3)), train=False))
  ns = optim.newton_schulz_flops(muon, shapes['params'])
  step = summary.FLOPS_PER_MAC * summary.macs_per_image(model, (32, 32, 3)) * muon.batch_size
  flat = ' '.join(text.split())
  assert (f"add {ns / 1e6:.1f} MFLOP per step to the model's {step / 1e9:.1f} GFLOP at batch "
          f"{muon.batch_size}, {100 * ns / step:.2f}%") in flat


def test_the_rerun_spread_and_the_probe_are_read_from_the_run_files():
  import numpy as np
  """docs/compare_cifar_cpu/README.md's rerun figures: the five reruns of the CPU rung's nin,
  every rerun among the committed runs, and the probe that tells the machine from the code."""
  docs = os.path.join(runs.ROOT, 'docs')
  cpu = os.path.join(docs, 'compare_cifar_cpu')
  flat = ' '.join(open(os.path.join(cpu, 'README.md')).read().split())
  five = sorted(results.reruns([os.path.join(cpu, 'questions'), os.path.join(cpu, 'rerun')]),
                key=lambda p: p['runs'][0][-1])
  assert len(five) == 5
  moved = ', '.join(f"{100 * p['test']:.2f}" for p in five)
  assert f'their test accuracy moved by {moved} points' in flat
  spread = results.rerun_spread([docs])
  assert (f"finds {spread['pairs']} pairs: test accuracy moved by {100 * spread['mean']:.2f} "
          f"points on average, at most {100 * spread['max']:.2f}") in flat
  with open(os.path.join(cpu, 'questions', 'report.json')) as f:
    nin = next(g for g in json.load(f)['groups'] if g['group'] == 'nin')
  sd = 100 * nin['test_accuracy_std']
  assert (f'a standard deviation of {sd:.2f} points (over all 7), and two independent draws of '
          f'that spread differ by {2 / np.sqrt(np.pi) * sd:.2f} points on average') in flat
  every = sorted(100 * p['test'] for p in results.reruns([docs]))
  readme = ' '.join(open(os.path.join(runs.ROOT, 'README.md')).read().split())
  assert f"moved by {every[0]:.2f} to {every[-1]:.2f} points ({len(every)} pairs)" in readme
  def first(*path):
    with open(os.path.join(cpu, *path, 'metrics.jsonl')) as f:
      return json.loads(f.readline())
  probe, rerun, committed = (first(*p) for p in (('rerun_probe', 'seed0'), ('rerun', 'nin', 'seed0'),
                                                 ('questions', 'nin', 'seed0')))
  assert (probe['loss'], probe['accuracy']) == (rerun['loss'], rerun['accuracy']) != (
      committed['loss'], committed['accuracy'])
  assert f"(loss {probe['loss']}, training accuracy {probe['accuracy']} at step 10" in flat
  assert f"({committed['loss']}, {committed['accuracy']})" in flat
  with open(os.path.join(cpu, 'rerun_probe', 'seed0', 'provenance.jsonl')) as f:
    assert json.loads(f.readline())['commit'].startswith('b305890')


def _short(verdict: str) -> str:
  """A verdict without its budget (the table's column names it)."""
  head, _, tail = verdict.partition(' at this budget')
  under = '; under the rerun spread' if 'smaller than a rerun alone' in tail else ''
  return head + under


def seed_sets_table(root='docs/compare_cifar_cpu/questions') -> list:
  """The CPU rung's answers on seeds 0-4 (two of which chose the learning rates: the answer
  committed before) against seeds 2-6 (none chose: the answer now), each Holm-adjusted over
  the six questions and tested as the report tests: a table of docs/compare_cifar_cpu/README.md."""
  path = os.path.join(runs.ROOT, root)
  every = results.collect(path)
  asked = [{k: v for k, v in q.items() if k not in ('seeds', 'chose')}
           for q in questions.load(path)]
  before = questions.answer(asked, [r for r in every if r['seed'] in range(5)], rows=[])
  now = questions.answer(questions.load(path), every, rows=[])
  lines = ['| question | seeds 0-4 (0 and 1 chose) | verdict | seeds 2-6 (none chose) | verdict |',
           '|---|---:|---|---:|---|']
  for b, a in zip(before, now):
    cells = [f"{questions._fmt_diff(x['test_accuracy'])}, {questions._test(x['test_accuracy'])} "
             f"| {_short(x['verdict'])}" for x in (b, a)]
    lines.append(f"| {a['id']} | " + ' | '.join(cells) + ' |')
  return lines


def test_the_answers_on_unused_seeds_are_read_from_the_run_files():
  text = open(os.path.join(runs.ROOT, 'docs/compare_cifar_cpu/README.md')).read()
  assert '\n'.join(seed_sets_table()) in text


def answers_table(root='docs/compare_cifar_cpu/questions') -> list:
  """docs/compare_cifar_cpu/README.md's table of the CPU rung's answers, read from the
  committed report.json (the report's own figures) and the runs' configs (peak rates)."""
  path = os.path.join(runs.ROOT, root)
  with open(os.path.join(path, 'report.json')) as f:
    answered = json.load(f)['questions']
  rate = {r['group']: r['config'].optimizer.learning_rate for r in results.collect(path)}
  lines = ['| question | A | B | parameters A / B | mult-adds A / B | peak LR A / B '
           '| test accuracy, A - B [95%] | test | p (Holm) | won | verdict at this budget |',
           '|---|---|---|---:|---:|---:|---:|---|---:|---:|---|']
  for q in answered:
    t = q['test_accuracy']
    a, b = q['a_size'], q['b_size']
    sizes = [f"{a['params']:,} / {b['params']:,} ({a['params'] / b['params']:.2f}x)",
             f"{a['macs'] / 1e6:.2f} M / {b['macs'] / 1e6:.2f} M ({a['macs'] / b['macs']:.2f}x)"]
    test = _test_name(t)
    lines.append(f"| **{q['id']}** {q['question']} | `{q['a']}` | `{q['b']}` | {sizes[0]} "
                 f"| {sizes[1]} | {rate[q['a']]:g} / {rate[q['b']]:g} "
                 f"| {questions._fmt_diff(t)} | {test} | {t['p_holm']:.2g} "
                 f"| {t['a_won']} of {t['pairs']} | {_short(q['verdict'])} |")
  return lines


def test_the_answers_table_is_the_reports():
  text = open(os.path.join(runs.ROOT, 'docs/compare_cifar_cpu/README.md')).read()
  assert '\n'.join(answers_table()) in text


def _rung_answers() -> list:
  """Both rungs' answers, {question id: answer}, from their committed report.json."""
  out = []
  for rung in ('questions', 'ladder'):
    with open(os.path.join(runs.ROOT, 'docs/compare_cifar_cpu', rung, 'report.json')) as f:
      out.append({q['id']: q for q in json.load(f)['questions']})
  return out


def _test_name(t) -> str:
  """The test column of the docs' tables: 'paired, r +0.65' or 'Welch, r -0.06'."""
  return questions._test(t).split(' ', 1)[1].lstrip(', ')


def results_table() -> list:
  """README's results: each question at both rungs, read from the rungs' report.json."""
  by_rung = _rung_answers()
  words = {'Q1a': "NiN's 1x1 + ReLU against a ReLU alone (matched widths)",
           'Q1b': "the ReLU after NiN's 1x1 layers",
           'Q3': 'NiN against a 3x3-only net at matched mult-adds',
           'Q3c': 'NiN against a 3x3-only net at matched parameters',
           'Q5': "dropout 0.5 between NiN's blocks"}
  lines = ['| question | 1/8 width, 5 epochs | 1/4 width, 9.9 epochs | page |', '|---|---|---|---|']
  for q, text in words.items():
    cells = []
    for rung in by_rung:
      a = rung[q]
      under = 'smaller than a rerun alone' in a['verdict']
      cells.append(questions._fmt_diff(a['test_accuracy']) + (
          ', not resolved' if not a['ahead'] else ', under the rerun spread' if under else ''))
    lines.append(f'| {text} | ' + ' | '.join(cells) +
                 ' | [budgets](docs/compare_cifar_cpu/budgets.md) |')
  return lines


def test_the_readme_results_are_the_reports():
  text = open(os.path.join(runs.ROOT, 'README.md')).read()
  assert '\n'.join(results_table()) in text


def rungs_table() -> list:
  """docs/compare_cifar_cpu/README.md's table of the ladder's answers beside the CPU rung's,
  read from both rungs' report.json."""
  by_rung = _rung_answers()
  cpu, ladder_ = by_rung
  lines = ['| question | CPU rung: A - B [95%] | ladder: A - B, test points [95%] | test '
           '| p (Holm) | won | verdict at the ladder\'s budget |',
           '|---|---:|---:|---|---:|---:|---|']
  for q, a in ladder_.items():
    t = a['test_accuracy']
    test = _test_name(t)
    lines.append(f"| {q} {a['a']} - {a['b']} | {questions._fmt_diff(cpu[q]['test_accuracy'])} "
                 f"| {questions._fmt_diff(t)} | {test} | {t['p_holm']:.2g} "
                 f"| {t['a_won']} of {t['pairs']} | {_short(a['verdict'])} |")
  return lines


def test_the_rungs_table_is_the_reports():
  text = open(os.path.join(runs.ROOT, 'docs/compare_cifar_cpu/README.md')).read()
  assert '\n'.join(rungs_table()) in text


def test_the_groups_table_is_the_reports():
  """docs/compare_cifar_cpu/README.md's groups: each mean ± half-width its report.json holds."""
  path = os.path.join(runs.ROOT, 'docs/compare_cifar_cpu/questions')
  with open(os.path.join(path, 'report.json')) as f:
    groups = json.load(f)['groups']
  rate = {r['group']: r['config'].optimizer.learning_rate for r in results.collect(path)}
  lines = open(os.path.join(runs.ROOT, 'docs/compare_cifar_cpu/README.md')).read().splitlines()
  for g in groups:
    cells = ' | '.join(f"{g[k + '_mean']:.2%} ± {g[k + '_ci']:.2%}"
                       for k in ('test_accuracy', 'test_accuracy_tta'))
    assert any(line.startswith(f"| `{g['group']}` |") and
               line.endswith(f"| {rate[g['group']]:g} | {cells} |") for line in lines), g['group']


def test_the_ladders_grid_so_far_in_the_docs_is_read_from_its_report():
  """docs/compare_cifar_cpu/README.md's account of the ladder's grid while it trains: the runs
  finished and plain_matched's validation means, from ladder_lr_grid/report.json; no group is
  named as chosen while its grid has runs to finish."""
  with open(os.path.join(ROOT, 'docs/compare_cifar_cpu/ladder_lr_grid/report.json')) as f:
    grid = json.load(f)
  flat = ' '.join(open(os.path.join(ROOT, 'docs/compare_cifar_cpu/README.md')).read().split())
  finished = sum(g['finished'] for g in grid['groups'])
  expected = sum(g['expected'] for g in grid['groups'])
  assert f'({finished} of {expected} runs so far)' in flat
  choices = {c['group']: c for c in grid['learning_rates']}
  plain = choices['plain_matched']
  rates = {float(r): v for r, v in plain['rates'].items()}
  assert max(rates, key=rates.get) == 0.75
  if plain['finished'] < plain['expected']:  # Its 3.0 still to run: nothing chosen yet.
    assert plain['chosen'] is None and 'its 3.0 is still to run' in flat
  else:
    assert plain['chosen'] == 0.75
    assert f'its 3.0 did worse still ({rates[3.0]:.2%}): its grid chooses 0.75' in flat
  assert (f'at 0.75 than at its CPU rate 1.5 on both seeds ({rates[0.75]:.2%} against '
          f'{rates[1.5]:.2%} mean validation accuracy)') in flat
  assert f'where 0.375 did worse on both seeds ({rates[0.375]:.2%})' in flat
  # "On both seeds": each seed at 0.75 above the same seed at 1.5 (and at 0.375).
  def val(rate, seed):
    with open(os.path.join(ROOT, 'docs/compare_cifar_cpu/ladder_lr_grid',
                           f'plain_matched@lr{rate}', f'seed{seed}', 'final_metrics.json')) as f:
      return json.load(f)['val_accuracy']
  assert all(val(0.75, s) > max(val(1.5, s), val(0.375, s)) for s in (0, 1))


def test_muons_grid_in_the_docs_is_read_from_its_report():
  """docs/time_to_accuracy/README.md's table of Muon's grid is its report's, and the ladder
  variant trains at no rate until the grid has chosen one inside its range."""
  from nin.experiments import questions
  from nin.launch import sweep as sweep_lib
  with open(os.path.join(ROOT, 'docs/time_to_accuracy/muon_lr_grid/report.json')) as f:
    grid = json.load(f)
  (choice,) = grid['learning_rates']
  choice['rates'] = {float(r): v for r, v in choice['rates'].items()}
  text = open(os.path.join(ROOT, 'docs/time_to_accuracy/README.md')).read()
  table = questions.learning_rate_section([choice])
  assert '\n'.join(table[4:]) in text
  def val(rate, seed):
    with open(os.path.join(ROOT, 'docs/time_to_accuracy/muon_lr_grid', f'nin_muon@lr{rate}',
                           f'seed{seed}', 'final_metrics.json')) as f:
      return 100 * json.load(f)['val_accuracy']
  gaps = [val(r, s) - val(0.48, t) for r in (0.12, 0.24) for s in (0, 1) for t in (0, 1)]
  flat = ' '.join(text.split())
  assert f'by {min(gaps):.2f} to {max(gaps):.2f} points on validation' in flat
  low = [val(0.12, s) - val(0.06, t) for s in (0, 1) for t in (0, 1)]
  assert f'0.06 by {min(low):.2f} to {max(low):.2f} points against each seed at 0.12' in flat
  assert (f"0.12 and 0.24 differ by "
          f"{100 * (choice['rates'][0.12] - choice['rates'][0.24]):.2f} points") in flat
  muon = sweep_lib._load_module('configs/sweeps/muon.py', 'muon_sweep')
  planned = {round(muon.LEARNING_RATE * s, 6) for s in muon.LR_STEPS}
  complete = set(choice['rates']) == planned
  inside = min(planned) < choice['chosen'] < max(planned)
  assert muon.LEARNING_RATE_CHOSEN == (choice['chosen'] if complete and inside else None)


def test_muons_answer_in_the_docs_is_read_from_its_report():
  """docs/time_to_accuracy/README.md's answer on seeds that chose nothing: M1's intervals,
  test and seeds from muon_ladder/report.json, the group means, FLOPs and training accuracy
  from the run files committed beside it."""
  import glob
  folder = os.path.join(ROOT, 'docs/time_to_accuracy/muon_ladder')
  with open(os.path.join(folder, 'report.json')) as f:
    report = json.load(f)
  (m1,) = report['questions']
  assert (m1['id'], m1['a'], m1['b'], m1['ahead']) == ('M1', 'nin_muon', 'nin', 'a')
  flat = ' '.join(open(os.path.join(ROOT, 'docs/time_to_accuracy/README.md')).read().split())
  cell = lambda d: f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"
  keys = ('test_accuracy', 'test_accuracy_tta', 'val_accuracy')
  assert f"| Muon minus SGD | | {' | '.join(cell(m1[k]) for k in keys)} |" in flat
  test = m1['test_accuracy']
  assert all(m1[k]['low'] > 0 for k in keys)
  assert not test['paired'] and test['r'] < 0
  assert f"correlate at r = {test['r']:.2f}" in flat
  tta, val = m1['test_accuracy_tta'], m1['val_accuracy']
  assert tta['paired'] and val['paired'] and tta['n'] == val['n'] == test['pairs']
  assert (f"correlate at r = {tta['r']:.2f} and {val['r']:.2f}, and those differences are "
          f"paired over the {test['pairs']} common seeds") in flat
  assert f"Muon won on all {test['pairs']} seeds both sides have" in flat
  assert test['a_won'] == test['pairs']
  assert (f"**+{100 * test['mean']:.2f} points test accuracy** (95% interval "
          f"+{100 * test['low']:.2f} to +{100 * test['high']:.2f}; "
          f"+{100 * tta['mean']:.2f} with TTA)") in flat
  finals, seeds = {}, {}
  for group in ('nin_muon', 'nin'):
    paths = sorted(glob.glob(os.path.join(folder, group, 'seed*', 'final_metrics.json')))
    finals[group] = [json.load(open(p)) for p in paths]
    found = [int(os.path.basename(os.path.dirname(p))[len('seed'):]) for p in paths]
    assert found == list(range(found[0], found[-1] + 1)), found  # A range, as the table says.
    seeds[group] = f'{found[0]}-{found[-1]}'
  mean = lambda g, k: 100 * sum(f[k] for f in finals[g]) / len(finals[g])
  for name, group in (('Muon at 0.12', 'nin_muon'), ('SGD at 0.75', 'nin')):
    row = ' | '.join(f'{mean(group, k):.2f}%' for k in keys)
    assert f'| {name} | {seeds[group]} | {row} |' in flat
  flops = {g: finals[g][0]['train_flops'] for g in finals}
  assert all(f['train_flops'] == flops[g] for g in finals for f in finals[g])
  assert finals['nin_muon'][0]['optimizer_flops_per_step'] > 0
  assert (f"are {flops['nin_muon'] / 1e12:.3f} TFLOP a run against SGD's "
          f"{flops['nin'] / 1e12:.3f} (+{100 * (flops['nin_muon'] / flops['nin'] - 1):.2f}%)") in flat
  fit = {g: (mean(g, 'train_accuracy'), mean(g, 'val_accuracy')) for g in finals}
  assert (f"(Muon {fit['nin_muon'][0]:.2f}%, SGD {fit['nin'][0]:.2f}%, the last interval's mean "
          f"on augmented images) is only {fit['nin_muon'][0] - fit['nin_muon'][1]:.2f} and "
          f"{fit['nin'][0] - fit['nin'][1]:.2f} points above") in flat
