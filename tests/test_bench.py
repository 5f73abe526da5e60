"""The benchmark harness: its quick mode fills every field, and its FLOPs agree with the summary."""
import json
import os
import subprocess
import sys

import runs

from nin.runtime import malloc


def _leaves(tree, path=''):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _leaves(v, f'{path}.{k}')
  elif isinstance(tree, list):
    for i, v in enumerate(tree):
      yield from _leaves(v, f'{path}[{i}]')
  else:
    yield path, tree


def test_quick_benchmark(tmp_path):
  out = tmp_path / 'bench.json'
  p = subprocess.run([sys.executable, '-m', 'nin', 'bench', '--quick', '--out', str(out)],
                     cwd=runs.ROOT, env=runs.env(), capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr
  res = json.loads(out.read_text())
  for path, value in _leaves(res):
    if path != '.environment.xla_flags':
      assert value not in (None, '') and (not isinstance(value, (int, float)) or value >= 0), path
  steps = res['train_step']
  assert {r['model'] for r in steps} == {'nin', 'googlenet', 'plain', 'airbench'}
  assert {r['impl'] for r in steps if r['model'] == 'nin'} == {'dense', 'conv', 'einsum'}
  # What users train (BatchNorm) beside the paper's nets.
  assert {(r['model'], r['variant']) for r in steps} >= {('nin', 'default'), ('nin', 'paper'),
                                                        ('plain', 'default'), ('plain', 'paper'),
                                                        ('airbench', 'airbench_muon,smoke')}
  for r in steps:
    assert r['flops_per_step'] > 0 and 0 < r['fraction_of_peak'] < 1.5
    if r['model'] == 'airbench':
      # Its quick net (widths 8/16/16) is so narrow that XLA's count of its exact
      # GELUs and BatchNorms rivals its convolutions: only the direction is checked.
      assert r['forward_flops_over_2_macs'] > 1 and 2 < r['step_flops_over_forward'] < 3.5, r
      continue
    # XLA's forward FLOPs: 2 x the summary's multiply-adds (less the zero-padding taps).
    assert abs(r['forward_flops_over_2_macs'] - 1) < 0.10, r
    # A training step: forward + gradients for activations and weights, about 3 forwards
    # (the quick GoogLeNet is narrow enough that its BatchNorm gradients, which recompute
    # the normalised input, add a few percent more).
    assert abs(r['step_flops_over_forward'] / 3 - 1) < (0.15 if r['model'] == 'googlenet' else 0.10), r
  assert set(res['input']['ratio_to_training']) == {'nin', 'googlenet', 'plain', 'airbench'}
  # The CLI restarted itself with the project's malloc settings (unless the caller set its own).
  assert res['environment']['glibc_tunables'] == os.environ.get('GLIBC_TUNABLES', malloc.TUNABLES)
  assert '| nin | default | dense | float32 |' in p.stdout and 'Input side:' in p.stdout
  assert res['settings']['quick'] is True and 'GoogLeNet narrowed' in p.stdout
  # The training loop itself, beside the step it runs (its ratio: what the loop adds).
  [loop] = res['loop']
  assert (loop['model'], loop['variant']) == ('nin', 'default') and loop['records'] >= 2
  assert 0 < loop['ratio_to_step'] < 3 and '| training loop img/s |' in p.stdout
  [step] = [r for r in steps if (r['model'], r['variant'], r['dtype'])
            == ('nin', loop['variant'], 'float32') and r['impl'] == 'dense']
  assert loop['ratio_to_step'] == loop['images_per_sec'] / step['images_per_sec']


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class _Writer:
  def __init__(self):
    self.records = []

  def read(self, kind):
    return [r for r in self.records if r['kind'] == kind]

  def write(self, kind, step, **scalars):
    self.records.append({'kind': kind, 'step': step, **scalars})


def test_loop_rate_bookkeeping(monkeypatch):
  """The loop's images/s (what `nin.checks.bench --loop_steps` divides by the step's): each record
  counts the steps it timed, leaves out the first step's compilation and the time of
  saving, and the run's training time counts the first step as a typical one."""
  import jax.numpy as jnp
  from nin.train import progress
  clock, writer = _Clock(), _Writer()
  monkeypatch.setattr(progress.time, 'time', clock)
  log = progress.StepLog(writer, lambda s: 0.1, batch_size=128, steps_per_epoch=10,
                         checkpoint_dir='ckpt', last_saved=None)
  m = {'loss': jnp.float32(2.0), 'accuracy': jnp.float32(0.5)}
  clock.now += 30.0                  # Step 0: compilation, timed apart.
  log.add(0, m)
  for step in range(1, 5):           # Steps 1-4: 0.5 s each.
    clock.now += 0.5
    log.add(step, m)
  log.flush()
  [r] = writer.read('train')
  assert r['step'] == 5 and log.compile_sec == 30.0
  assert r['images_per_sec'] == 4 * 128 / 2.0 and r['step_time'] == 0.5
  assert r['train_time_sec'] == 5 * 0.5
  clock.now += 60.0                  # An evaluation and a save: not training time.
  log.saved(5)
  for step in range(5, 10):          # Steps 5-9: 0.25 s each.
    clock.now += 0.25
    log.add(step, m)
  log.flush()
  r = writer.read('train')[-1]
  assert r['images_per_sec'] == 5 * 128 / 1.25 and r['train_time_sec'] == 2.5 + 1.25
