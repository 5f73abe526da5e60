r"""A Markdown report and plots from a sweep's workdirs.

  python -m nin.report runs/compare            # writes runs/compare/report.md and *.png

When the sweep file asked questions (`get_questions`, kept in sweep.json),
the report opens with them: each the difference of two groups' mean accuracy,
paired by seed, with its 95% interval and a verdict (nin.stats).

One row per group (model family and variant): parameters and multiply-adds
(from the model itself, via nin.summary), their difference from the first
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
nin.steps) and its training time (compilation and evaluation excluded), and
a table gives, per group, the FLOPs and time at which validation accuracy first
reached each threshold (mean over the seeds that reached it).
"""
import json
import os
import sys

import numpy as np

from nin import metrics, plots, questions, run_config, stats, summary, sweep, workdir
from nin.errors import ConfigError


def collect(root: str) -> list:
  """One dict per run: its name, group, seed, status and what its files hold."""
  manifest = sweep.read_manifest(root)
  if manifest is not None:
    expected = manifest['runs']
  else:  # No manifest: every <group>/seed<k> folder holding a config.
    expected = []
    for group in sorted(os.listdir(root)):
      if os.path.isdir(os.path.join(root, group)):
        for run in sorted(os.listdir(os.path.join(root, group))):
          if run.startswith('seed') and os.path.exists(
              os.path.join(root, group, run, workdir.CONFIG_FILE)):
            expected.append({'group': group, 'seed': int(run[4:]), 'name': f'{group}/{run}'})
  runs = []
  for r in expected:
    run_dir = os.path.join(root, r['name'])
    entry = {'name': r['name'], 'group': r['group'], 'seed': r['seed'], 'dir': run_dir,
             'status': workdir.status(run_dir)}
    if os.path.exists(os.path.join(run_dir, workdir.CONFIG_FILE)):
      entry['config'] = run_config.load(run_dir)
    elif 'config' in r:  # Not started (or refused): what the sweep asked for.
      entry['config'] = sweep.build_config(r)
    if entry['status'] == 'finished':
      entry['final'] = workdir.read_final(run_dir)
    if os.path.exists(os.path.join(run_dir, workdir.METRICS_FILE)):
      evals = metrics.read_metrics(run_dir, 'eval')
      entry['curve'] = [(m['epoch'], m['val_accuracy']) for m in evals]
      # Runs from before training FLOPs and time were recorded have no compute curve.
      entry['compute_curve'] = [(m['train_flops'], m['train_time_sec'], m['val_accuracy'])
                                for m in evals if m.get('train_flops') is not None]
    runs.append(entry)
  return runs


def model_size(config) -> dict:
  """Parameters and mult-adds per image; `effective_params` counts a linear-1x1 NiN folded."""
  from nin.registry import build_model
  try:
    model = build_model(config.model)
  except ConfigError:  # A run refused for its model: no size to show.
    return {}
  shape = summary.input_shape_for(config)
  size = summary.totals(summary.summarize(model, shape))
  size['effective_params'] = size['params']
  if config.model.name == 'nin' and model.linear_1x1:
    # Linear 1x1 layers fold into the kxk conv before them (models.nin.fold_linear_nin):
    # the function is that of a NiN whose blocks are one kxk conv each.
    folded = build_model(config.model, width_divisor=1, blocks=tuple(
        (k, (widths[-1],)) for k, widths in model.resolved_blocks()))
    size['effective_params'] = summary.totals(summary.summarize(folded, shape))['params']
  return size


RECIPE_COLUMNS = ('BatchNorm', 'epochs', 'batch', 'optimiser', 'peak LR', 'schedule',
                  'weight decay', 'label smoothing', 'weight averaging', 'dropout', 'augmentation',
                  'TTA', 'preprocessing', 'training images', 'validation')


def recipe(config) -> dict:
  """How a config trains, in the report's recipe columns (dropout belongs to the model)."""
  o, s, d = config.optimizer, config.schedule, config.dataset
  optimiser = o.name
  if o.name == 'sgd':
    optimiser += f' {"nesterov " if o.nesterov else ""}momentum {o.momentum:g}' if o.momentum else ''
  if o.bn_bias_lr_multiplier != 1:
    optimiser += f', BN biases at {o.bn_bias_lr_multiplier:g}x LR'
  schedule = s.name
  if s.name == 'piecewise':
    schedule += f' x{s.decay_factor:g} at {", ".join(f"{b:g}" for b in s.boundaries_epochs)}'
  if s.name == 'triangle':
    schedule += f' {s.initial_factor:g} -> 1 -> {s.final_factor:g}'
  if s.warmup_epochs and s.name != 'onecycle':
    schedule += f', {s.warmup_epochs:g} warmup epoch{"s" if s.warmup_epochs != 1 else ""}'
  flips = 'alternating flips' if d.alternate_flips else 'flip'
  pad = ' reflect' if d.pad_mode == 'reflect' else ''
  augmentation = ', '.join(
      a for a, on in ((f'crop {d.crop_padding}px{pad}', d.crop_padding), (flips, d.flip),
                      (f'cutout {d.cutout}', d.cutout)) if on) or 'none'
  epochs = (f'{config.num_train_steps} steps' if config.num_train_steps > 0
            else f'{config.num_epochs:g}')
  from nin import registry
  model = registry.canonical_model(config.model)  # Every field, the model's defaults filled.
  dropout = f'{model.get("dropout_rate", 0):g}'   # A net without the field has no dropout.
  if model.get('head_dropout_rate'):
    dropout += f', {model["head_dropout_rate"]:g} before the FC head'
  batchnorm = 'yes' if registry.uses_batchnorm(config.model) else 'no'
  return {'BatchNorm': batchnorm, 'epochs': epochs, 'batch': str(config.batch_size),
          'optimiser': optimiser, 'peak LR': f'{o.learning_rate:g}', 'schedule': schedule,
          'weight decay': f'{o.weight_decay:g}' + (' (all)' if o.decay_all else ''),
          'label smoothing': f'{config.label_smoothing:g}',
          'weight averaging': (f'lookahead every {o.lookahead_every}' if o.lookahead_every
                               else 'none'),
          'dropout': dropout, 'augmentation': augmentation, 'TTA': str(config.tta),
          'preprocessing': d.preprocess,
          'training images': f'{d.num_train:,}' if d.num_train > 0 else 'all',
          'validation': str(d.validation_examples)}


def _relative(value, reference) -> str:
  if value is None or not reference:
    return '—'
  if value == reference:
    return '='
  change = 100 * (value / reference - 1)
  return f'{change:+.1f}%' if abs(change) < 1 else f'{change:+.0f}%'


def _mean_std(done, key):
  """Mean, std and the 95% interval's half-width (Student's t over seeds; None for one seed)."""
  values = [r['final'].get(key) for r in done]
  if not values or any(v is None for v in values):
    return {}
  a = np.array(values, float)
  return {f'{key}_mean': float(a.mean()), f'{key}_std': float(a.std(ddof=1)) if len(a) > 1 else 0.0,
          f'{key}_ci': stats.mean_interval(a)['half_width']}


def _levelled(run):
  return stats.levelled_off(run.get('curve') or [])


def group_rows(runs: list) -> list:
  rows = []
  for group in dict.fromkeys(r['group'] for r in runs):
    members = [r for r in runs if r['group'] == group]
    done = [r for r in members if r['status'] == 'finished']
    config = next((r['config'] for r in members if 'config' in r), None)
    row = {'group': group, 'expected': len(members), 'finished': len(done),
           'not_finished': {r['name']: r['status'] for r in members if r['status'] != 'finished'}}
    if config is not None:
      row.update(model=config.model.name, dataset=config.dataset.name, recipe=recipe(config),
                 **model_size(config))
    if done:
      row.update(**_mean_std(done, 'val_accuracy'), **_mean_std(done, 'test_accuracy'),
                 **_mean_std(done, 'test_accuracy_tta'),
                 time_to_accuracy=_time_to_accuracy(done),
                 train_time=float(np.mean([r['final']['train_time_sec'] for r in done])),
                 images_per_sec=float(np.mean([r['final']['images_per_sec'] or 0 for r in done])),
                 epochs=float(np.mean([r['final']['epochs'] for r in done])),
                 levelled_off=sum(_levelled(r) is True for r in done),
                 levelled_judged=sum(_levelled(r) is not None for r in done))
    rows.append(row)
  # Differences in size from the first group of the same model family (e.g. relu_only vs nin).
  first = {}
  for row in rows:
    ref = first.setdefault(row.get('model'), row)
    row['reference'] = ref['group']
    row['params_vs_reference'] = _relative(row.get('params'), ref.get('params'))
    row['macs_vs_reference'] = _relative(row.get('macs'), ref.get('macs'))
  return rows


def _time_to_accuracy(done) -> dict:
  """Per threshold: how many seeds reached it, and their mean FLOPs and time when they did."""
  out = {}
  for t in sorted({t for r in done for t in r['final'].get('time_to_val_accuracy', {})}, key=float):
    hits = [r['final']['time_to_val_accuracy'][t] for r in done
            if t in r['final'].get('time_to_val_accuracy', {})]
    out[t] = {'reached': len(hits), 'of': len(done),
              'train_flops': float(np.mean([h['train_flops'] for h in hits])),
              'train_time_sec': float(np.mean([h['train_time_sec'] for h in hits])),
              'epoch': float(np.mean([h['epoch'] for h in hits]))}
  return out


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


def recipe_differences(rows: list) -> list:
  """The recipe columns in which the rows of one table differ, dropout included."""
  recipes = [r['recipe'] for r in rows if 'recipe' in r]
  return [c for c in RECIPE_COLUMNS if len({r[c] for r in recipes}) > 1]


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
           'the last fifth of training (— : too few evaluations there to tell).', '',
           '| run | validation | test ± s.e. | test, TTA | levelled off |',
           '|---|---:|---:|---:|---|']
  for r in finished:
    f = r['final']
    n = sum(f.get('test_predicted') or [])
    se = f" ± {stats.binomial_se(f['test_accuracy'], n):.2%}" if n else ''
    tta = f"{f['test_accuracy_tta']:.2%}" if f.get('test_accuracy_tta') is not None else '—'
    level = {True: 'yes', False: 'no', None: '—'}[_levelled(r)]
    val = _fmt(f.get('val_accuracy'), '.2%')  # — : trained without a validation split.
    lines.append(f"| {r['name']} | {val} | {f['test_accuracy']:.2%}{se} "
                 f"| {tta} | {level} |")
  return lines


def _fmt(v, spec):
  return '—' if v is None else format(v, spec)


def markdown(root: str, runs: list, rows: list, answers=()) -> str:
  finished = [r for r in runs if r['status'] == 'finished']
  devices = sorted({f"{r['final']['devices']} x {r['final']['device_kind']} "
                    f"({r['final']['platform']})" for r in finished})
  epochs = sorted({r['final']['epochs'] for r in finished})
  lines = [f'# Comparison report: {os.path.basename(os.path.normpath(root))}', '']
  differ = recipe_differences(rows)
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
  lines += questions.section(answers)
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
            '## Recipes', '', '| group | ' + ' | '.join(RECIPE_COLUMNS) + ' |',
            '|---|' + '---|' * len(RECIPE_COLUMNS)]
  for r in rows:
    if 'recipe' in r:
      lines.append(f"| {r['group']} | " + ' | '.join(
          f'**{r["recipe"][c]}**' if c in differ else r['recipe'][c] for c in RECIPE_COLUMNS) + ' |')
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


def write_report(root: str, figures: bool = True) -> str:
  """Writes root/report.md, report.json and (with `figures`) its plots; returns the Markdown."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f'No sweep folder {root!r}')
  runs = collect(root)
  if not runs:
    raise FileNotFoundError(f'{root!r} holds no sweep: no {workdir.SWEEP_FILE} and no '
                            f'<group>/seed<k> run folders')
  rows = group_rows(runs)
  answers = questions.answer(questions.load(root), runs, rows)
  text = markdown(root, runs, rows, answers)
  if figures:
    plots.plots(root, runs, rows)
    for r in runs:
      if r.get('curve') is not None and r['status'] == 'finished':
        plots.plot_run(r['dir'], os.path.join(root, plots.curve_file(r)), title=r['name'])
  with open(os.path.join(root, workdir.REPORT_FILES[0]), 'w') as f:
    f.write(text)
  with open(os.path.join(root, workdir.REPORT_FILES[1]), 'w') as f:
    json.dump({'groups': rows, 'questions': answers,
               'learning_rates': questions.chosen_learning_rates(rows)}, f, indent=1)
  return text


def define_flags():
  """No flags: the sweep folder is the one argument."""


def main(argv):
  from absl import app
  from nin import cli
  if len(argv) != 2:
    raise app.UsageError('Usage: python -m nin.report SWEEP_WORKDIR', 2)
  return cli.run(lambda: print(write_report(argv[1])))


if __name__ == '__main__':
  from nin import cli
  define_flags()
  sys.exit(cli.main(main))
