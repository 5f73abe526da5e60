"""Reports: accuracy against compute, and committed reports re-rendered from their run files."""
import json
import os
import shutil

import pytest

from configs import plain as plain_config
from nin import report
from nin import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Committed reports that ship their runs' small files (config, metrics, final summary).
COMMITTED = ('docs/time_to_accuracy',)


def _fake_run(root, group, seed, evals, reached):
  run_dir = os.path.join(root, group, f'seed{seed}')
  os.makedirs(run_dir)
  config = plain_config.get_config('airbench')
  config.seed = seed
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
  assert '| 69.00% ± 4.24% | 68.00% ± 4.24% | 69.00% ± 4.24% |' in text


@pytest.mark.parametrize('folder', COMMITTED)
def test_committed_reports_re_render_from_their_run_files(folder, tmp_path):
  """Every figure of a committed report is read from the run files committed beside it."""
  src = os.path.join(ROOT, folder)
  dst = tmp_path / os.path.basename(folder)
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns('*.png', '*.md', 'report.json'))
  runs = [os.path.relpath(d, dst) for d, _, files in os.walk(dst) if workdir_lib.CONFIG_FILE in files]
  assert runs, f'{folder} ships no run files'
  text = report.write_report(str(dst))
  with open(os.path.join(src, 'report.md')) as f:
    assert text == f.read()
