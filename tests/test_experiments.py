"""Every experiment is one sweep command: its runs build, validate, and train a few steps."""
import math
import os

import pytest

from nin.launch import sweep
from nin import train
from nin.train.validate import validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEPS = ('configs/sweeps/compare.py', 'configs/sweeps/nin_paper.py')


@pytest.mark.parametrize('variant', ['', 'paper', 'cpu', 'digits', 'smoke'])
@pytest.mark.parametrize('path', SWEEPS)
def test_every_run_of_every_sweep_variant_is_a_valid_config(path, variant):
  runs = sweep.load_sweep(f'{os.path.join(ROOT, path)}:{variant}' if variant else
                          os.path.join(ROOT, path))
  assert len({r['group'] for r in runs}) >= 4 and len({r['seed'] for r in runs}) >= 2
  for run in runs:
    config = sweep.build_config(run)
    validate(config)
    assert config.seed == run['seed']
    if variant == 'cpu':  # Real CIFAR-10, cut to fit a CPU: the one protocol, shortened.
      assert config.dataset.name == 'cifar10' and config.dataset.num_train == 15_000
      assert config.dataset.validation_examples == 5000 and config.optimizer.learning_rate == 0.1


@pytest.mark.parametrize('group', ['nin_fc', 'nin_fc_dropout', 'nin_no_dropout'])
def test_the_nin_paper_ablations_train(tmp_path, group):
  run = next(r for r in sweep.load_sweep(os.path.join(ROOT, 'configs/sweeps/nin_paper.py:smoke'))
             if r['group'] == group)
  config = sweep.build_config(run)
  config.num_train_steps = 3
  final = train.train_and_evaluate(config, str(tmp_path), handle_signals=False)
  assert final['step'] == 3 and math.isfinite(final['test_loss'])
  assert final['validation_examples'] == 56


@pytest.mark.parametrize('variant', ['', 'cpu', 'smoke'])
def test_the_precision_sweep_pairs_runs_that_differ_only_in_dtype(variant):
  path = os.path.join(ROOT, 'configs/sweeps/precision.py')
  runs = sweep.load_sweep(f'{path}:{variant}' if variant else path)
  configs = {(r['group'], r['seed']): sweep.build_config(r) for r in runs}
  for config in configs.values():
    validate(config)
  for (group, seed), config in configs.items():
    if group == 'nin_bfloat16':
      twin = configs[('nin_float32', seed)]
      assert config.dtype == 'bfloat16' and twin.dtype == 'float32'
      twin.dtype = 'bfloat16'
      assert config.to_dict() == twin.to_dict()
  spec = f'{path}:{variant}' if variant else path
  assert [(q['a'], q['b']) for q in sweep.load_questions(spec, runs)] == [
      ('nin_bfloat16', 'nin_float32')]
