"""What a sweep's runs hold: each run's files, and each group's figures and sizes.

    runs = results.collect('runs/questions_cpu')   # one dict per run (config, final, curves)
    rows = results.group_rows(runs)                # one dict per group (means, intervals, sizes)

Every number comes from the workdirs' files or from the models themselves
(nin.train.summary); nin.experiments.report renders them, nin.experiments.questions answers questions with
them, and notebooks read them directly.
"""
import os

import numpy as np

from nin.train import metrics, run_config, summary
from nin.experiments import recipe, stats
from nin.launch import sweep
from nin import workdir
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
    elif isinstance(r.get('resolved'), dict):  # Not started: what the sweep asked for, as
      # data (sweep.json's copy); a config file is code, run only when a user names it.
      entry['config'] = run_config.from_dict(run_config.upgrade(r['resolved']))
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


def levelled(run):
  return stats.levelled_off(run.get('curve') or [])


def last_fifth_spread(run):
  return stats.last_fraction_spread(run.get('curve') or [])


def refuse_copies(runs: list) -> None:
  """Refuses a group whose finished seeds were trained with identical configs (the seed
  included): one run trained several times (e.g. a sweep whose seeds were overridden),
  whose spread is not that of seeds, so that an interval over them would be fake."""
  seen = {}
  for r in runs:
    if r['status'] != 'finished' or 'config' not in r:
      continue
    key = (r['group'], workdir.config_to_json(r['config']))
    if key in seen:
      raise ConfigError(
          f"{seen[key]} and {r['name']} were trained with identical configs (seed "
          f"{r['config'].seed} in both): they are one run trained twice, not two seeds, and "
          f"no interval is computed over them; train them again with their own seeds")
    seen[key] = r['name']


def group_rows(runs: list) -> list:
  """One dict per group: means and 95% intervals over its finished seeds, sizes, recipe."""
  refuse_copies(runs)
  rows = []
  for group in dict.fromkeys(r['group'] for r in runs):
    members = [r for r in runs if r['group'] == group]
    done = [r for r in members if r['status'] == 'finished']
    config = next((r['config'] for r in members if 'config' in r), None)
    row = {'group': group, 'expected': len(members), 'finished': len(done),
           'not_finished': {r['name']: r['status'] for r in members if r['status'] != 'finished'}}
    if config is not None:
      row.update(model=config.model.name, dataset=config.dataset.name, recipe=recipe.columns(config),
                 **model_size(config))
    if done:
      row.update(**_mean_std(done, 'val_accuracy'), **_mean_std(done, 'test_accuracy'),
                 **_mean_std(done, 'test_accuracy_tta'),
                 time_to_accuracy=_time_to_accuracy(done),
                 train_time=float(np.mean([r['final']['train_time_sec'] for r in done])),
                 images_per_sec=float(np.mean([r['final']['images_per_sec'] or 0 for r in done])),
                 epochs=float(np.mean([r['final']['epochs'] for r in done])),
                 levelled_off=sum(levelled(r) is True for r in done),
                 levelled_judged=sum(levelled(r) is not None for r in done))
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


def reruns(folders) -> list:
  """Runs trained twice with one config (the seed included, data paths aside) from
  different commits, found among the run folders under `folders`: how far a rerun alone
  moves a result. [{'runs': (dir, dir), 'commits': (c, c), 'test': |difference|,
  'val': |difference|}], in points of accuracy (0-1)."""
  seen = {}
  for folder in folders:
    for d, _, files in sorted(os.walk(folder)):
      if workdir.FINAL_FILE not in files or workdir.CONFIG_FILE not in files:
        continue
      final = workdir.read_final(d)
      config = run_config.load(d).copy_and_resolve_references()
      for key in ('data_dir', 'manual_dir', 'image_dir'):
        if key in config.dataset:
          config.dataset[key] = ''
      commit = (final.get('provenance') or {}).get('commit')
      entries = seen.setdefault(workdir.config_to_json(config), [])
      # A copy of one run committed in two folders (a grid's run reused by a sweep) is one run.
      if not any(c == commit and f['test_accuracy'] == final['test_accuracy']
                 and f['val_accuracy'] == final['val_accuracy'] for _, c, f in entries):
        entries.append((d, commit, final))
  pairs = []
  for entries in seen.values():
    for i, (d1, c1, f1) in enumerate(entries):
      for d2, c2, f2 in entries[i + 1:]:
        if c1 and c2 and c1 != c2:  # A copy of one run (a reused grid run) is no rerun.
          pairs.append({'runs': (d1, d2), 'commits': (c1[:7], c2[:7]),
                        'test': abs(f1['test_accuracy'] - f2['test_accuracy']),
                        'val': abs(f1['val_accuracy'] - f2['val_accuracy'])})
  return pairs


def rerun_spread(folders) -> dict | None:
  """How far a rerun alone moved test accuracy, over the `reruns` pairs found under
  `folders`: {'pairs', 'mean', 'max' (of |difference|, accuracy 0-1), 'folders'}; None
  when they hold no rerun. What a verdict's interval over seeds at one commit leaves out."""
  pairs = reruns(folders)
  if not pairs:
    return None
  moved = [p['test'] for p in pairs]
  return {'pairs': len(pairs), 'mean': float(np.mean(moved)), 'max': float(max(moved)),
          'folders': [os.path.normpath(f) for f in folders]}
