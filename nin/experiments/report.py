r"""A Markdown report and plots from a sweep's workdirs.

  python -m nin report runs/compare            # writes runs/compare/report.md and *.png
  python -m nin report runs/questions_cpu --reruns runs/questions_cpu,runs/questions_rerun

When the sweep file asked questions (`get_questions`, kept in sweep.json),
the report opens with them: each the difference of two groups' mean accuracy,
paired by seed where that narrows it (Welch's otherwise), with its 95% interval,
Holm-adjusted p and verdict (nin.experiments.questions), on the seeds the question
names; with --reruns, beside how far the same run trained again moved.
This module renders; what it renders is read by nin.experiments.results (the runs' files, per
run and per group), nin.experiments.recipe (the recipe columns) and nin.experiments.questions.

One row per group (model family and variant): parameters and multiply-adds
(from the model itself, via nin.train.summary), their difference from the first
group of the same family, the effective parameters of a linear-1x1 NiN once
its 1x1 layers are folded away, validation and test accuracy as the mean over
the finished seeds +- the half-width of its 95% interval, training time and
images/s. Per run: test accuracy with its binomial standard error, and whether
validation accuracy levelled off. A second table gives
each group's recipe (BatchNorm, epochs, optimiser, peak learning rate,
schedule, weight decay, dropout, augmentation); when the rows differ in
anything, dropout included, the report says so at the top. Runs that are
missing, failed or unfinished are listed as such; a group with no finished
run shows no accuracy at all. Every number comes from the workdirs' files.

Accuracy against compute: every run's validation accuracy is plotted against
its training FLOPs (the model's counted multiply-adds x 6 x images seen,
nin.train.steps) and its training time (compilation and evaluation excluded), and
a table gives, per group, the FLOPs and time at which validation accuracy first
reached each threshold (mean over the seeds that reached it).
"""
import json
import os

from absl import flags

from nin.experiments import plots, questions, recipe, results, stats
from nin import workdir


def _time_to_accuracy_section(rows) -> list:
  rows = [r for r in rows if r.get('time_to_accuracy')]
  if not rows:
    return []
  thresholds = sorted({t for r in rows for t in r['time_to_accuracy']}, key=float)
  lines = ['', '## Time to accuracy', '',
           'When validation accuracy first reached each threshold: training time in seconds '
           '(compilation and evaluation excluded) and training PFLOPs (counted multiply-adds '
           'x 6 x images seen), the mean over the seeds that reached it (their count when '
           'not all did; an empty cell: none did).', '',
           '| group | ' + ' | '.join(f'{float(t):.0%}' for t in thresholds) + ' |',
           '|---|' + '---:|' * len(thresholds)]
  for r in rows:
    cells = []
    for t in thresholds:
      h = r['time_to_accuracy'].get(t)
      if h is None:
        cells.append('')
        continue
      seeds = '' if h['reached'] == h['of'] else f" ({h['reached']}/{h['of']} seeds)"
      cells.append(f"{h['train_time_sec']:.0f} s, {h['train_flops'] / 1e15:.3g} PFLOP{seeds}")
    lines.append(f"| {r['group']} | " + ' | '.join(cells) + ' |')
  return lines


def _fmt_acc(row, key, n):
  if key + '_mean' not in row:
    return '—'
  if n == 1 or row.get(key + '_ci') is None:  # One seed: no interval to show.
    return f"{row[key + '_mean']:.2%}"
  return f"{row[key + '_mean']:.2%} ± {row[key + '_ci']:.2%}"


def _runs_section(finished: list) -> list:
  """Per run: accuracies with the binomial standard error of the test figure, and the curve's end."""
  if not finished:
    return []
  lines = ['', '## Runs', '',
           'Test accuracy ± its binomial standard error (the sampling error of one run on this '
           'many test images). Levelled off: validation accuracy stayed within one point over '
           'the last fifth of training; where it did not, by how much it moved there (highest '
           'minus lowest, in points; — : too few evaluations there to tell).', '',
           '| run | validation | test ± s.e. | test, TTA | levelled off |',
           '|---|---:|---:|---:|---|']
  for r in finished:
    f = r['final']
    n = sum(f.get('test_predicted') or [])
    se = f" ± {stats.binomial_se(f['test_accuracy'], n):.2%}" if n else ''
    tta = f"{f['test_accuracy_tta']:.2%}" if f.get('test_accuracy_tta') is not None else '—'
    level = {True: 'yes', False: 'no', None: '—'}[results.levelled(r)]
    if level == 'no':
      level += f' ({100 * results.last_fifth_spread(r):.1f})'
    val = _fmt(f.get('val_accuracy'), '.2%')  # — : trained without a validation split.
    lines.append(f"| {r['name']} | {val} | {f['test_accuracy']:.2%}{se} "
                 f"| {tta} | {level} |")
  return lines


def _fmt(v, spec):
  return '—' if v is None else format(v, spec)


def markdown(root: str, runs: list, rows: list, answers=(), reruns=None) -> str:
  finished = [r for r in runs if r['status'] == 'finished']
  devices = sorted({f"{r['final']['devices']} x {r['final']['device_kind']} "
                    f"({r['final']['platform']})" for r in finished})
  epochs = sorted({r['final']['epochs'] for r in finished})
  lines = [f'# Comparison report: {os.path.basename(os.path.normpath(root))}', '']
  differ = recipe.differences(rows)
  if differ:
    lines += [f'> **Warning: the rows of this table were trained under different recipes** '
              f'(they differ in: {", ".join(differ)}; see the recipe table). A gap between '
              f'rows may come from the recipe, not the architecture.', '']
  known = [r['final']['provenance'] for r in finished if r['final'].get('provenance')]
  versions = sorted({', '.join(f'{k} {v}' for k, v in p['versions'].items() if v) for p in known})
  if len(versions) > 1:
    lines += [f'> **Warning: the runs of this table ran with different library versions** '
              f'({len(versions)} sets: {"; ".join(versions)}).', '']
  lines += _provenance_warnings(rows, finished)
  commits = sorted({(p['commit'] or 'not a git checkout')[:12]
                    + (' with uncommitted changes' if p['dirty'] else '') for p in known})
  lines += [f'- Runs: {len(finished)} of {len(runs)} finished.',
            f'- Devices: {", ".join(devices) or "—"}.',
            f'- Libraries: {"; ".join(versions) or "—"}; code: {", ".join(commits) or "—"}'
            + (f' ({len(finished) - len(known)} runs predate these records)'
               if len(known) < len(finished) else '') + '.',
            f'- Epochs trained: {", ".join(f"{e:.3g}" for e in epochs) or "—"}.',
            f'- Datasets: {", ".join(sorted({r["dataset"] for r in rows if "dataset" in r})) or "—"}.',
            '- Model choices use the validation split (held out of the training split); '
            'the test split is evaluated once, at the end of each run.',
            '']
  lines += questions.section(answers, reruns)
  lines += questions.learning_rate_section(questions.chosen_learning_rates(rows))
  lines += ['## Groups', '',
            '| group | model | params | effective params | mult-adds | params, mult-adds vs '
            'first of family | seeds | validation accuracy | test accuracy | test accuracy, TTA '
            '| train time (s) | img/s |',
            '|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    val, test, tta = (_fmt_acc(r, k, r['finished'])
                      for k in ('val_accuracy', 'test_accuracy', 'test_accuracy_tta'))
    vs = ('—' if r['reference'] == r['group']
          else f"{r['params_vs_reference']}, {r['macs_vs_reference']} vs {r['reference']}")
    lines.append(
        f"| {r['group']} | {r.get('model', '—')} | {_fmt(r.get('params'), ',')} "
        f"| {_fmt(r.get('effective_params'), ',')} | {_fmt(r.get('macs'), ',')} | {vs} "
        f"| {r['finished']}/{r['expected']} | {val} | {test} | {tta} "
        f"| {_fmt(r.get('train_time'), '.1f')} | {_fmt(r.get('images_per_sec'), '.0f')} |")
  lines += ['', 'Accuracies are the mean over the finished seeds ± the half-width of its 95% '
            'interval (Student\'s t; one seed: its value); '
            'TTA: with the test-time augmentation of the run\'s `tta` level. Effective parameters: '
            'those left once linear 1x1 layers are folded into the convolution before them '
            '(a linear-1x1 NiN is a plain conv net of that size).', '',
            '## Recipes', '', '| group | ' + ' | '.join(recipe.COLUMNS) + ' |',
            '|---|' + '---|' * len(recipe.COLUMNS)]
  for r in rows:
    if 'recipe' in r:
      lines.append(f"| {r['group']} | " + ' | '.join(
          f'**{r["recipe"][c]}**' if c in differ else r['recipe'][c] for c in recipe.COLUMNS) + ' |')
  problems = [(name, s) for r in rows for name, s in r['not_finished'].items()]
  if problems:
    lines += ['', '## Runs not finished', '']
    lines += [f'- `{name}`: {s}' for name, s in problems]
  lines += _runs_section(finished)
  lines += _time_to_accuracy_section(rows)
  lines += _predictions_section(finished)
  lines += ['', '## Plots', '', '![test accuracy vs multiply-adds](accuracy_vs_macs.png)',
            '![test accuracy vs parameters](accuracy_vs_params.png)',
            '![validation accuracy during training](val_accuracy_curves.png)']
  if any(r.get('compute_curve') for r in runs):
    lines += ['![validation accuracy against training FLOPs](val_accuracy_vs_flops.png)',
              '![validation accuracy against training time](val_accuracy_vs_time.png)']
  lines += ['']
  curves = [r for r in runs if r.get('curve') is not None and r['status'] == 'finished']
  if curves:
    lines += ['Each run: training loss and learning rate, validation accuracy.', '']
    lines += [f"![{r['name']}]({plots.curve_file(r)})" for r in curves] + ['']
  return '\n'.join(lines)


def _provenance_warnings(rows, finished) -> list:
  """Per group, the finished runs whose code cannot be named: started from a tree with
  uncommitted changes, or finished before runs recorded their provenance."""
  notes = []
  for row in rows:
    members = [r for r in finished if r['group'] == row['group']]
    dirty = sum(bool(r['final'].get('provenance') and r['final']['provenance']['dirty'])
                for r in members)
    unknown = sum(not r['final'].get('provenance') for r in members)
    parts = ([f'{dirty} from a tree with uncommitted changes'] if dirty else []) + (
        [f'{unknown} with no provenance record'] if unknown else [])
    if parts:
      notes.append(f"{row['group']}: {' and '.join(parts)} (of {len(members)})")
  if not notes:
    return []
  return [f'> **Warning: some runs cannot be traced to a commit**: {"; ".join(notes)}. '
          f'Their code is not known exactly.', '']


def _predictions_section(finished) -> list:
  """Per run, how often each class was predicted on the test split (a collapse shows here)."""
  rows = [r for r in finished if r['final'].get('test_predicted')]
  if not rows:
    return []
  n = len(rows[0]['final']['test_predicted'])
  names = next((r['final']['class_names'] for r in rows if r['final'].get('class_names')),
               [str(i) for i in range(n)])
  lines = ['', '## Test predictions per class', '',
           'How many test images each run assigned to each class.', '',
           '| run | ' + ' | '.join(names) + ' |', '|---|' + '---:|' * n]
  for r in rows:
    lines.append(f"| {r['name']} | " + ' | '.join(str(c) for c in r['final']['test_predicted']) + ' |')
  return lines


def write_report(root: str, figures: bool = True, reruns=()) -> str:
  """Writes root/report.md, report.json and (with `figures`) its plots; returns the Markdown.
  `reruns`: folders whose runs trained again (`results.rerun_spread`), to set every answer
  beside what a rerun alone moves."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f'No sweep folder {root!r}')
  runs = results.collect(root)
  if not runs:
    raise FileNotFoundError(f'{root!r} holds no sweep: no {workdir.SWEEP_FILE} and no '
                            f'<group>/seed<k> run folders')
  rows = results.group_rows(runs)
  spread = results.rerun_spread(reruns) if reruns else None
  answers = questions.answer(questions.load(root), runs, rows, spread)
  text = markdown(root, runs, rows, answers, spread)
  workdir.check_writable(root, 'the sweep folder', files=workdir.REPORT_FILES,
                         folders=(plots.CURVES,))
  if figures:
    plots.plots(root, runs, rows)
    for r in runs:
      if r.get('curve') is not None and r['status'] == 'finished':
        plots.plot_run(r['dir'], os.path.join(root, plots.curve_file(r)), title=r['name'])
  workdir.write_atomically(os.path.join(root, workdir.REPORT_FILES[0]), text)
  workdir.write_atomically(os.path.join(root, workdir.REPORT_FILES[1]), json.dumps(
      {'groups': rows, 'questions': answers, 'reruns': spread,
       'learning_rates': questions.chosen_learning_rates(rows)}, indent=1))
  return text


def define_flags():
  flags.DEFINE_list('reruns', [], 'Folders holding runs trained again with the same config '
                    'and seed from another commit (they may include the sweep folder): the '
                    'report sets each answer beside how far such a rerun moved.')


def main(argv):
  from absl import app
  if len(argv) != 2:
    raise app.UsageError('Usage: python -m nin report SWEEP_WORKDIR [--reruns DIR,DIR]', 2)
  for folder in flags.FLAGS.reruns:
    if not os.path.isdir(folder):
      raise app.UsageError(f'--reruns {folder}: no such folder', 2)
  print(write_report(argv[1], reruns=flags.FLAGS.reruns))
