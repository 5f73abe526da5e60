"""The figures of a sweep's report: accuracy against size and compute, and each run's curves.

nin.experiments.report calls `plots` and `plot_run`; both read only what nin.experiments.results.collect
gathered from the run folders (and, for one run's curves, its metrics.jsonl).
"""
import os

import numpy as np

from nin.train import metrics


CURVES = 'curves'  # The folder of each run's own curves, in the sweep folder.


def curve_file(run) -> str:
  """Where a run's own curves go, relative to the sweep folder."""
  return os.path.join(CURVES, run['name'].replace('/', '_') + '.png')


def plot_run(run_dir: str, path: str, title: str = '') -> None:
  """Training loss and learning rate against the step, beside validation accuracy."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  train_records = metrics.read_metrics(run_dir, 'train')
  evals = metrics.read_metrics(run_dir, 'eval')
  fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
  steps = [r['step'] for r in train_records]
  a.plot(steps, [r['loss'] for r in train_records], label='training loss')
  a.set_xlabel('step')
  a.set_ylabel('training loss')
  lr = a.twinx()
  lr.plot(steps, [r['learning_rate'] for r in train_records], color='gray', ls='--')
  lr.set_ylabel('learning rate (dashed)')
  b.plot([r['step'] for r in evals], [r['val_accuracy'] for r in evals], 'o-')
  b.set_xlabel('step')
  b.set_ylabel('validation accuracy')
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=90)
  plt.close(fig)


def plots(root: str, runs: list, rows: list) -> list:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  paths = []
  for key, label, name in (('macs', 'multiply-adds per image', 'accuracy_vs_macs.png'),
                           ('params', 'parameters', 'accuracy_vs_params.png')):
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
      if 'test_accuracy_mean' in r:
        ax.errorbar(r[key], r['test_accuracy_mean'], yerr=r['test_accuracy_std'], fmt='o', capsize=3)
        ax.annotate(r['group'], (r[key], r['test_accuracy_mean']), fontsize=8, xytext=(4, 4),
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
  ax.set_ylabel('validation accuracy (mean over seeds)')
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(root, 'val_accuracy_curves.png'), dpi=100)
  plt.close(fig)
  paths.append(os.path.join(root, 'val_accuracy_curves.png'))
  if any(r.get('compute_curve') for r in runs):
    paths += [_plot_compute(root, runs, 0, 'training FLOPs (multiply-adds x 6 x images)',
                            'val_accuracy_vs_flops.png'),
              _plot_compute(root, runs, 1, 'training time (s; compilation and evaluation '
                            'excluded)', 'val_accuracy_vs_time.png')]
  return paths


def _plot_compute(root, runs, axis, label, name) -> str:
  """Validation accuracy against a compute axis of `compute_curve`: a line per run, log x."""
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  colors = {g: f'C{i % 10}' for i, g in enumerate(dict.fromkeys(r['group'] for r in runs))}
  for r in runs:
    if r.get('compute_curve') and r['status'] == 'finished':
      ax.plot([p[axis] for p in r['compute_curve']], [p[2] for p in r['compute_curve']], 'o-',
              ms=3, color=colors[r['group']], label=r['name'])
  ax.set_xscale('log')
  ax.set_xlabel(label)
  ax.set_ylabel('validation accuracy')
  ax.legend(fontsize=6)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  path = os.path.join(root, name)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
