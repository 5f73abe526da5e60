"""config.deterministic: one config and one seed give one run, bit for bit."""
import os

import pytest

import runs
from nin import errors
from nin.runtime import determinism, xla_flags

pytestmark = pytest.mark.gpu_path  # Also run under the newer version set (.ci/run).

ARGS = ('--config', 'configs/nin.py:smoke', '--config.num_epochs=3',
        '--config.eval_every_epochs=1', '--config.log_every_steps=2',
        '--config.deterministic=True')


def _lines_without_timing(workdir):
  """metrics.jsonl, line by line, each record without its wall-clock fields (runs.TIMING)."""
  return [sorted(r.items()) for r in runs.records(workdir)]


def test_two_runs_of_one_seed_write_the_same_metrics(tmp_path):
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  pa = runs.cli('train.py', *ARGS, '--workdir', a, check=True)
  runs.cli('train.py', *ARGS, '--workdir', b, check=True)
  assert 'Deterministic: the CPU: deterministic without any setting' in pa.stdout
  assert len(runs.records(a)) > 5
  # Every loss, accuracy, learning rate and evaluation: equal as floats, so equal as text.
  assert _lines_without_timing(a) == _lines_without_timing(b)
  fa, fb = runs.final(a), runs.final(b)
  for key in ('test_loss', 'test_accuracy', 'val_loss', 'train_loss', 'test_predicted'):
    assert fa[key] == fb[key], key


def test_a_value_that_is_not_a_bool_is_refused_before_anything_runs(tmp_path):
  workdir = tmp_path / 'w'
  p = runs.cli('train.py', '--config', 'configs/nin.py:smoke', '--workdir', str(workdir),
               '--config.deterministic=yes')
  assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith('Error: ')
  assert not workdir.exists()


def test_a_conflicting_xla_flag_is_one_clear_error(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_gpu_deterministic_ops=false')
  with pytest.raises(errors.ConfigError, match='conflicts with XLA_FLAGS'):
    determinism.require()


def test_on_a_gpu_the_flag_is_set_before_the_backend_starts(monkeypatch):
  from jax._src import xla_bridge
  monkeypatch.setattr(xla_flags, 'cpu_only', lambda: False)
  monkeypatch.setattr(xla_bridge, 'backends_are_initialized', lambda: False)
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=1')
  assert 'xla_gpu_deterministic_ops=true' in determinism.require()
  assert os.environ['XLA_FLAGS'] == ('--xla_force_host_platform_device_count=1 '
                                     '--xla_gpu_deterministic_ops=true')
  determinism.require()  # Idempotent: the flag is there once.
  assert os.environ['XLA_FLAGS'].count('xla_gpu_deterministic_ops') == 1


def test_on_a_gpu_that_already_started_it_says_what_to_set(monkeypatch):
  from jax._src import xla_bridge
  monkeypatch.setattr(xla_flags, 'cpu_only', lambda: False)
  monkeypatch.setattr(xla_bridge, 'backends_are_initialized', lambda: True)
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  with pytest.raises(errors.ConfigError, match='XLA_FLAGS=--xla_gpu_deterministic_ops=true'):
    determinism.require()
