r"""A Markdown report and plots from a sweep's workdirs.

  python -m nin.report runs/compare            # writes runs/compare/report.md and *.png

One row per group (model family and variant): parameters and multiply-adds
(from the model itself, via nin.summary), test accuracy as mean +- std over
the finished seeds, training time and images/s. Runs that are missing,
failed or unfinished are listed as such; a group with no finished run shows
no accuracy at all. Every number comes from the workdirs' files.
"""
import json
import os
import sys

import numpy as np

from nin import metrics, summary, sweep, train


def collect(root: str) -> list:
  """One dict per run: its name, group, seed, status and what its files hold."""
  manifest = os.path.join(root, sweep.SWEEP_FILE)
  if os.path.exists(manifest):
    with open(manifest) as f:
      expected = json.load(f)['runs']
  else:  # No manifest: every <group>/seed<k> folder holding a config.
    expected = []
    for group in sorted(os.listdir(root)):
      if os.path.isdir(os.path.join(root, group)):
        for run in sorted(os.listdir(os.path.join(root, group))):
          if run.startswith('seed') and os.path.exists(os.path.join(root, group, run, 'config.json')):
            expected.append({'group': group, 'seed': int(run[4:]), 'name': f'{group}/{run}'})
  runs = []
  for r in expected:
    run_dir = os.path.join(root, r['name'])
    entry = {'name': r['name'], 'group': r['group'], 'seed': r['seed'], 'dir': run_dir,
             'status': sweep.status(run_dir)}
    if os.path.exists(os.path.join(run_dir, train.CONFIG_FILE)):
      entry['config'] = train.load_config(run_dir)
    elif 'config' in r:  # Not started (or refused): what the sweep asked for.
      entry['config'] = sweep.build_config(r)
    if entry['status'] == 'finished':
      with open(os.path.join(run_dir, train.FINAL_FILE)) as f:
        entry['final'] = json.load(f)
    if os.path.exists(os.path.join(run_dir, metrics.METRICS_FILE)):
      entry['curve'] = [(m['epoch'], m['test_accuracy'])
                        for m in metrics.read_metrics(run_dir, 'eval')]
    runs.append(entry)
  return runs


def _model_size(config) -> dict:
  from nin.registry import ConfigError, build_model
  try:
    rows = summary.summarize(build_model(config.model), summary.input_shape_for(config))
  except ConfigError:  # A run refused for its model: no size to show.
    return {}
  return summary.totals(rows)


def group_rows(runs: list) -> list:
  rows = []
  for group in dict.fromkeys(r['group'] for r in runs):
    members = [r for r in runs if r['group'] == group]
    done = [r for r in members if r['status'] == 'finished']
    config = next((r['config'] for r in members if 'config' in r), None)
    row = {'group': group, 'expected': len(members), 'finished': len(done),
           'not_finished': {r['name']: r['status'] for r in members if r['status'] != 'finished'}}
    if config is not None:
      row.update(model=config.model.name, dataset=config.dataset.name, **_model_size(config))
    if done:
      acc = np.array([r['final']['test_accuracy'] for r in done])
      row.update(acc_mean=float(acc.mean()), acc_std=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                 train_time=float(np.mean([r['final']['train_time_sec'] for r in done])),
                 images_per_sec=float(np.mean([r['final']['images_per_sec'] or 0 for r in done])),
                 epochs=float(np.mean([r['final']['epochs'] for r in done])))
    rows.append(row)
  return rows


def _fmt(v, spec):
  return '—' if v is None else format(v, spec)


def markdown(root: str, runs: list, rows: list) -> str:
  finished = [r for r in runs if r['status'] == 'finished']
  devices = sorted({f"{r['final']['devices']} x {r['final']['device_kind']} "
                    f"({r['final']['platform']})" for r in finished})
  epochs = sorted({r['final']['epochs'] for r in finished})
  lines = [f'# Comparison report: {root}', '',
           f'- Runs: {len(finished)} of {len(runs)} finished.',
           f'- Devices: {", ".join(devices) or "—"}.',
           f'- Epochs: {", ".join(f"{e:g}" for e in epochs) or "—"}.',
           f'- Datasets: {", ".join(sorted({r["dataset"] for r in rows if "dataset" in r})) or "—"}.',
           '',
           '| group | model | params | mult-adds | seeds | test accuracy (mean ± std) '
           '| train time (s) | img/s |',
           '|---|---|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    acc = (f"{r['acc_mean']:.2%} ± {r['acc_std']:.2%}" if 'acc_mean' in r else '—')
    lines.append(
        f"| {r['group']} | {r.get('model', '—')} | {_fmt(r.get('params'), ',')} "
        f"| {_fmt(r.get('macs'), ',')} | {r['finished']}/{r['expected']} | {acc} "
        f"| {_fmt(r.get('train_time'), '.1f')} | {_fmt(r.get('images_per_sec'), '.0f')} |")
  problems = [(name, s) for r in rows for name, s in r['not_finished'].items()]
  if problems:
    lines += ['', '## Runs not finished', '']
    lines += [f'- `{name}`: {s}' for name, s in problems]
  lines += ['', '## Plots', '', '![accuracy vs multiply-adds](accuracy_vs_macs.png)',
            '![accuracy vs parameters](accuracy_vs_params.png)',
            '![test accuracy during training](test_accuracy_curves.png)', '']
  return '\n'.join(lines)


def plots(root: str, runs: list, rows: list) -> list:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  paths = []
  for key, label, name in (('macs', 'multiply-adds per image', 'accuracy_vs_macs.png'),
                           ('params', 'parameters', 'accuracy_vs_params.png')):
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
      if 'acc_mean' in r:
        ax.errorbar(r[key], r['acc_mean'], yerr=r['acc_std'], fmt='o', capsize=3)
        ax.annotate(r['group'], (r[key], r['acc_mean']), fontsize=8, xytext=(4, 4),
                    textcoords='offset points')
    ax.set_xscale('log')
    ax.set_xlabel(label)
    ax.set_ylabel('test accuracy')
    fig.tight_layout()
    fig.savefig(os.path.join(root, name), dpi=100)
    plt.close(fig)
    paths.append(os.path.join(root, name))
  fig, ax = plt.subplots(figsize=(6, 4))
  for group in dict.fromkeys(r['group'] for r in runs):
    curves = [r['curve'] for r in runs if r['group'] == group and r.get('curve')]
    if curves:
      n = min(len(c) for c in curves)
      epochs = [c[0] for c in curves[0][:n]]
      ax.plot(epochs, np.mean([[c[1] for c in cur[:n]] for cur in curves], 0), label=group)
  ax.set_xlabel('epoch')
  ax.set_ylabel('test accuracy (mean over seeds)')
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(root, 'test_accuracy_curves.png'), dpi=100)
  plt.close(fig)
  return paths + [os.path.join(root, 'test_accuracy_curves.png')]


def write_report(root: str) -> str:
  """Writes root/report.md and its plots; returns the Markdown."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f'No sweep folder {root!r}')
  runs = collect(root)
  rows = group_rows(runs)
  text = markdown(root, runs, rows)
  plots(root, runs, rows)
  with open(os.path.join(root, 'report.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(root, 'report.json'), 'w') as f:
    json.dump(rows, f, indent=1)
  return text


def main(argv=None):
  argv = sys.argv if argv is None else argv
  if len(argv) != 2:
    print('Usage: python -m nin.report SWEEP_WORKDIR', file=sys.stderr)
    return 2
  try:
    print(write_report(argv[1]))
  except FileNotFoundError as e:
    print(f'Error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
