"""Bad input anywhere: one line naming the problem, exit 2, nothing written or lost."""
import json
import os
import subprocess
import sys
import time

import pytest

import runs
from nin import workdir as workdir_lib

SMOKE = ('--config', 'configs/nin.py:smoke')


def _one_line_exit_2(p, message):
  assert p.returncode == 2, (p.stdout, p.stderr)
  assert message in p.stderr and p.stderr.strip().count('\n') == 0, p.stderr
  assert 'Traceback' not in p.stderr


def _tool(*args):
  return subprocess.run([sys.executable, '-m', 'nin', *args], cwd=runs.ROOT, env=runs.env(),
                        capture_output=True, text=True, timeout=300)


def test_a_workdir_that_is_a_file(tmp_path):
  path = tmp_path / 'file'
  path.write_text('x')
  _one_line_exit_2(runs.cli('train.py', *SMOKE, '--workdir', str(path)), 'is a file, not a directory')
  assert path.read_text() == 'x'


@pytest.mark.parametrize('content,message', [
    (None, 'holds no run (config.json is missing)'),
    ('{"model": ', 'is not valid JSON'),
    ('{"something": 1}', 'is not the config of a run of this project'),
])
def test_eval_on_a_workdir_without_a_usable_run(tmp_path, content, message):
  if content is not None:
    (tmp_path / 'config.json').write_text(content)
  _one_line_exit_2(runs.cli('eval.py', '--workdir', str(tmp_path)), message)
  assert not (tmp_path / 'checkpoints').exists()


def test_eval_with_a_config_but_no_checkpoint_creates_nothing(tmp_path):
  workdir = tmp_path / 'run'
  runs.cli('train.py', *SMOKE, '--workdir', str(workdir), '--config.num_train_steps=1', check=True)
  os.rename(workdir / 'checkpoints', tmp_path / 'moved')
  _one_line_exit_2(runs.cli('eval.py', '--workdir', str(workdir)), 'holds no checkpoint yet')
  assert not (workdir / 'checkpoints').exists()


def test_eval_on_a_checkpoint_of_another_architecture(tmp_path):
  workdir = tmp_path / 'run'
  runs.cli('train.py', *SMOKE, '--workdir', str(workdir), '--config.num_train_steps=1', check=True)
  config = json.loads((workdir / 'config.json').read_text())
  config['model']['width_divisor'] //= 2  # Twice the widths of the model saved.
  (workdir / 'config.json').write_text(json.dumps(config))
  _one_line_exit_2(runs.cli('eval.py', '--workdir', str(workdir)), 'does not fit the model')


@pytest.mark.parametrize('source,message', [
    ('def get_runs():\n  return []\n', 'defines no get_sweep(arg)'),
    ('def get_sweep(arg:\n', 'does not parse'),
])
def test_a_broken_sweep_file(tmp_path, source, message):
  path = tmp_path / 'sweep.py'
  path.write_text(source)
  _one_line_exit_2(_tool('sweep', str(path), '--workdir', str(tmp_path / 'w')), message)
  assert not (tmp_path / 'w').exists()


def test_a_stray_argument_is_one_line(tmp_path):
  _one_line_exit_2(runs.cli('train.py', 'stray', *SMOKE, '--workdir', str(tmp_path / 'w')),
                   'Unexpected arguments: stray')
  assert not (tmp_path / 'w').exists()
  _one_line_exit_2(runs.cli('eval.py', 'stray', '--workdir', str(tmp_path)),
                   'Unexpected arguments: stray')
  _one_line_exit_2(_tool('report', 'a', 'b'), 'Usage: python -m nin report')


def test_verbosity_shows_the_whole_traceback(tmp_path):
  args = ('train.py', *SMOKE, '--workdir', str(tmp_path), '--config.model.name=bogus')
  _one_line_exit_2(runs.cli(*args), "Unknown model name 'bogus'")
  p = runs.cli(*args, '--verbosity=0')
  assert p.returncode != 0 and 'Traceback' in p.stderr and 'ConfigError' in p.stderr, p.stderr


def test_a_report_on_a_folder_without_runs_writes_nothing(tmp_path):
  _one_line_exit_2(_tool('report', str(tmp_path)), 'holds no sweep')
  assert os.listdir(tmp_path) == []
  _one_line_exit_2(_tool('report', str(tmp_path), f'--reruns={tmp_path / "gone"}'),
                   f'--reruns {tmp_path / "gone"}: no such folder')
  _one_line_exit_2(_tool('ladder', str(tmp_path), str(tmp_path), f'--reruns={tmp_path / "x"}'),
                   f'--reruns {tmp_path / "x"}: no such folder')
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('args,message', [
    (('--config.model.name=bogus',), "Unknown model name 'bogus'"),
    (('--config.dataset.image_size=0',), 'dataset.image_size=0 must be a positive integer'),
])
def test_summary_bad_config(args, message):
  _one_line_exit_2(_tool('summary', '--config', 'configs/nin.py', *args), message)


@pytest.mark.parametrize('args,message', [
    (('--models', 'resnet'), '--models=resnet: unknown resnet; valid: nin, googlenet, plain'),
    (('--impls', 'bogus'), 'unknown bogus; valid: dense, conv, einsum'),
    (('--dtypes', 'float16'), 'unknown float16; valid: float32, bfloat16'),
    (('--batch_size', '0'), '--batch_size=0 must be positive'),
    (('--steps', '0'), '--steps=0 must be positive'),
    (('--blocks', '0'), '--blocks=0 must be positive'),
    (('--out', '/nonexistent/dir/bench.json'), 'does not exist'),
])
def test_bench_bad_flags_fail_before_timing_anything(args, message):
  _one_line_exit_2(_tool('bench', *args), message)


def test_an_empty_final_file_is_not_a_finished_run(tmp_path):
  workdir = str(tmp_path / 'run')
  runs.cli('train.py', *SMOKE, '--workdir', workdir, check=True)
  first = runs.final(workdir)
  open(os.path.join(workdir, 'final_metrics.json'), 'w').close()
  assert workdir_lib.status(workdir) == 'incomplete'  # The sweep reruns it.
  p = runs.cli('train.py', *SMOKE, '--workdir', workdir, check=True)
  assert 'Done: step 8' in p.stdout
  assert runs.final(workdir)['test_accuracy'] == first['test_accuracy']
  assert [r['kind'] for r in runs.records(workdir)].count('final') == 1


def test_a_metrics_file_deleted_mid_run_is_written_again(tmp_path):
  workdir = str(tmp_path / 'run')
  proc = runs.start('train.py', *SMOKE, '--workdir', workdir, '--config.num_epochs=40',
                    '--config.log_every_steps=1')
  path = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 120
  while time.time() < deadline and not (os.path.exists(path) and len(runs.records(workdir)) >= 2):
    time.sleep(0.05)
  os.remove(path)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  records = runs.records(workdir)
  assert records[0]['step'] == 1 and records[-1]['kind'] == 'final'
  final = runs.final(workdir)
  assert final['train_loss'] is not None and final['train_time_sec'] > 0
