"""The parts of `nin.checks.device_check`: what each measures on the device it runs on.

Each part fills a `Record` (a dict written to JSON after every result, so
that a part stopped at its time budget keeps what it had measured) and runs
in a process of its own (nin/checks/device_check.py). `tiny` runs the same code on
small shapes, narrow nets and a few steps, so the whole check runs on a CPU
in a test.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

from nin.runtime import children


class Record(dict):
  """A part's results, saved to `path` after every change."""

  def __init__(self, path):
    super().__init__()
    self.path = path

  def save(self):
    tmp = f'{self.path}.tmp'
    with open(tmp, 'w') as f:
      json.dump(self, f, indent=1, default=float)
    os.replace(tmp, self.path)

  def add(self, key, item):
    self.setdefault(key, []).append(item)
    self.save()


# ----------------------------------------------------------------------------- environment

def environment(rec: Record) -> None:
  import jax
  from nin.checks import bench
  from nin.runtime import xla_flags
  rec.update(bench.environment())
  rec['devices'] = [str(d) for d in jax.devices()]
  stats = getattr(jax.devices()[0], 'memory_stats', lambda: None)() or {}
  rec['device_memory_bytes'] = stats.get('bytes_limit')
  rec['accelerator_plugins'] = xla_flags.accelerator_plugins()
  # The CPU-only settings (nin/runtime/xla_flags.py, nin/runtime/malloc.py) must not reach an accelerator.
  rec['cpu_xla_flags_set'] = any(f.split('=')[0] in rec['xla_flags'] for f in xla_flags.CPU_FLAGS)
  rec['jax_platforms'] = os.environ.get('JAX_PLATFORMS', '')
  rec['tensorflow_imported'] = any(m.split('.')[0] in ('tensorflow', 'tensorflow_datasets')
                                   for m in sys.modules)
  rec.save()


# ----------------------------------------------------------------------------- gradients

def _max_errors(ours, ref) -> tuple:
  """(largest absolute difference, and that over the largest reference gradient) of two
  trees, each of whose leaves is one group: the parameters, the input. A group's own
  scale is the yardstick, as the 1x1 layer's bias before BatchNorm has a gradient of
  zero in exact arithmetic, which rounding alone makes nonzero."""
  import jax
  worst_abs = worst_rel = 0.0
  for a, b in zip(ours, ref):
    a = [np.asarray(x, np.float64) for x in jax.tree.leaves(a)]
    b = [np.asarray(x, np.float64) for x in jax.tree.leaves(b)]
    err = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    scale = max(float(np.max(np.abs(y))) for y in b)
    worst_abs, worst_rel = max(worst_abs, err), max(worst_rel, err / max(scale, 1e-30))
  return worst_abs, worst_rel


def _unit_pair(dtype, c_in, c_out):
  """A 3x3 conv, BatchNorm + ReLU, a 1x1 layer, BatchNorm + ReLU: with the project's
  layers (`ours`) and with stock flax's (`ref`), on one parameter tree."""
  import flax.linen as nn
  import jax.numpy as jnp
  from nin.layers import batch_norm
  from nin import layers

  class Unit(nn.Module):
    stock: bool

    @nn.compact
    def __call__(self, x):
      x = nn.Conv(c_in, (3, 3), use_bias=False, dtype=dtype, name='conv')(x)
      if self.stock:
        x = nn.relu(nn.BatchNorm(False, momentum=0.6, dtype=dtype, name='bn1')(x))
        x = nn.Conv(c_out, (1, 1), dtype=dtype, name='conv1x1')(x)
        x = nn.relu(nn.BatchNorm(False, momentum=0.6, dtype=dtype, name='bn2')(x))
      else:
        x = batch_norm.BatchNorm(momentum=0.6, relu=True, dtype=dtype, name='bn1')(x)
        x = layers.Conv1x1(c_out, dtype=dtype, name='conv1x1')(x)
        x = batch_norm.BatchNorm(momentum=0.6, relu=True, dtype=dtype, name='bn2')(x)
      return jnp.mean(x.astype(jnp.float32), axis=(1, 2))
  return Unit(stock=False), Unit(stock=True)


def gradients(rec: Record, tiny: bool) -> None:
  """One training step's gradients through the project's BatchNorm and 1x1 layer (their
  gradients written by hand) against stock flax's modules, on this device.

  float32 is compared at the highest matmul precision (a GPU's default float32 dot
  may run in TF32, which differs from itself between layouts), and at the default;
  bfloat16 is compared at the default, to bfloat16's precision."""
  import jax
  import jax.numpy as jnp
  batch, size, c_in, c_out = (8, 8, 16, 12) if tiny else (256, 32, 192, 160)
  x = jax.random.normal(jax.random.key(0), (batch, size, size, 3 if tiny else 96)) * 2 + 0.5
  target = jax.random.normal(jax.random.key(1), (batch, c_out))
  for dtype, precision, tol in (('float32', 'highest', 1e-4), ('float32', 'default', 3e-2),
                                ('bfloat16', 'default', 6e-2)):
    ours, ref = _unit_pair(jnp.dtype(dtype), c_in, c_out)
    variables = ours.init(jax.random.key(2), x)
    # Stock flax holds a 1x1 conv's kernel as (1, 1, C_in, C_out); Dense's is (C_in, C_out).
    ref_params = dict(variables['params'])
    ref_params['conv1x1'] = {'kernel': ref_params['conv1x1']['kernel'][None, None],
                             'bias': ref_params['conv1x1']['bias']}

    def loss(module, params, x):
      out, _ = module.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                            mutable=['batch_stats'])
      return jnp.mean(jnp.square(out - target))

    with jax.default_matmul_precision(precision):
      g_ours = jax.jit(jax.grad(lambda p, x: loss(ours, p, x), (0, 1)))(variables['params'], x)
      g_ref = jax.jit(jax.grad(lambda p, x: loss(ref, p, x), (0, 1)))(ref_params, x)
    g_ref[0]['conv1x1']['kernel'] = g_ref[0]['conv1x1']['kernel'][0, 0]
    worst_abs, worst_rel = _max_errors(g_ours, g_ref)
    rec.add('checks', {'what': 'conv3x3, BatchNorm+ReLU, 1x1, BatchNorm+ReLU: gradients of '
                               'parameters and input, ours against stock flax',
                       'dtype': dtype, 'matmul_precision': precision,
                       'shape': list(x.shape), 'max_abs_error': worst_abs,
                       'max_error_over_max_gradient': worst_rel, 'tolerance': tol,
                       'ok': bool(worst_rel <= tol)})


def hlo_dot_dtypes(compiled_text: str) -> dict:
  """{operand dtypes: count} of the matrix products (dots, convolutions, and the library
  calls they become: cuBLAS, cuDNN) in an optimized HLO text: bfloat16 operands are
  what a GPU's tensor cores take. Operands are found by name (HLO names are unique in a
  module), since optimized HLO prints them without their types."""
  dtype_of = dict(re.findall(r'%([\w.\-]+) = \(?(\w+)\[', compiled_text))
  counts = {}
  for line in compiled_text.splitlines():
    m = re.search(r' = .*?\s(dot|convolution|custom-call)\((.*?)\)', line)
    if not m or (m.group(1) == 'custom-call' and not re.search(
        r'custom_call_target="[^"]*(gemm|conv|Conv|matmul)', line)):
      continue
    types = sorted({dtype_of.get(name, '?') for name in re.findall(r'%([\w.\-]+)', m.group(2))})
    key = '+'.join(types) or '?'
    counts[key] = counts.get(key, 0) + 1
  return counts


# ----------------------------------------------------------------------------- bench

# (family, variant, 1x1 impls) timed on an accelerator; the CPU's --tiny run times the
# narrow nets of `nin.checks.bench --quick`.
_BENCH = (('airbench', 'airbench', ('dense',)), ('nin', 'default', ('dense', 'conv')),
          ('nin', 'paper', ('dense',)), ('plain', 'default', ('dense',)),
          ('googlenet', 'default', ('dense',)))
_BENCH_TINY = (('airbench', 'airbench,smoke', ('dense',)), ('nin', 'default', ('dense',)))


def bench(rec: Record, tiny: bool, batch_size: int, dtypes) -> None:
  """The matmul peak per dtype, then each configuration's training step: images/s and
  its share of that peak (nin.checks.bench's measures), and its matrix products' operand types."""
  import jax
  from nin.checks import bench as bench_lib
  from nin.runtime import distributed
  mesh = distributed.make_mesh()
  n = 1024 if tiny else 8192
  rec['settings'] = {'batch_size': batch_size, 'matmul_n': n, 'dtypes': list(dtypes),
                     'steps': 2 if tiny else 20, 'warmup': 1 if tiny else 3}
  peaks = {}
  for dt in dtypes:
    fn, flops = bench_lib.matmul_peak_fn(dt, n)
    peaks[dt] = flops / float(np.median(bench_lib._timed(fn, 3 if tiny else 10)))
  rec['matmul_peak_flops_per_sec'] = peaks
  rec.save()
  for family, variant, impls in (_BENCH_TINY if tiny else _BENCH):
    for dtype in dtypes:
      for impl in impls:
        p = bench_lib.prepare_train_step(family, impl, dtype, batch_size, mesh,
                                         quick=tiny, variant=variant)
        for _ in range(rec['settings']['warmup']):
          bench_lib.time_step(p, timed=False)
        for _ in range(rec['settings']['steps']):
          bench_lib.time_step(p)
        r = bench_lib.step_figures(p)
        r['fraction_of_peak'] = r['achieved_flops_per_sec'] / peaks[dtype]
        r['matrix_product_operands'] = hlo_dot_dtypes(p['step'].as_text())
        del r['page_faults_per_step']  # A CPU measure (nin/runtime/malloc.py).
        rec.add('train_step', r)
        print(f"  {family:<10} {variant:<15} {impl:<6} {dtype:<9} "
              f"{r['images_per_sec']:10.1f} img/s {r['fraction_of_peak']:6.1%} of peak",
              flush=True)
        del p
        jax.clear_caches()


# ----------------------------------------------------------------------------- peers

def peers(rec: Record, tiny: bool, batch_size: int, dtypes) -> None:
  """PyTorch's NiN step (benchmarks/torch_nin.py) on the same device, where it is installed."""
  try:
    import torch
  except ImportError:
    rec['skipped'] = 'PyTorch is not installed here'
    rec.save()
    return
  script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        'benchmarks', 'torch_nin.py')
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  rec['device'] = device
  for variant in ('bn', 'paper'):
    for dtype in dtypes:
      args = [sys.executable, script, '--device', device, '--batch_size', str(batch_size),
              '--dtype', dtype, '--variant', variant, '--steps', '2' if tiny else '20']
      p = subprocess.run(args, capture_output=True, text=True,
                         preexec_fn=children.die_with_parent(signal.SIGKILL))
      if p.returncode:
        rec.add('failed', {'args': args[2:], 'stderr': p.stderr.strip().splitlines()[-1:]})
        continue
      rec.add('train_step', json.loads(p.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- determinism

# Wall-clock fields: the only ones two repeatable runs may differ in.
_TIMING = ('images_per_sec', 'step_time', 'compile_sec', 'train_time_sec', 'time_to_val_accuracy')


def _first_difference(a: list, b: list):
  """(record index, field, a's value, b's value) of the first difference, or None."""
  for i, (ra, rb) in enumerate(zip(a, b)):
    for key in sorted(set(ra) | set(rb)):
      if ra.get(key) != rb.get(key):
        return i, key, ra.get(key), rb.get(key)
  return None if len(a) == len(b) else (min(len(a), len(b)), '(records)', len(a), len(b))


def determinism(rec: Record, setting: str, tiny: bool, image_dir: str, dtype: str,
                scratch: str) -> None:
  """NiN at a quarter width under the fast protocol, trained twice from one seed with
  `deterministic=True` (`setting`: what that set, nin/runtime/determinism.py): every record
  of the two runs compared, timing aside."""
  from nin import train as train_lib
  from nin.train import metrics
  runs = []
  for i in (0, 1):
    config = run_config('nin_quarter', tiny, image_dir, dtype, seed=0)
    config.deterministic = True
    if not tiny:  # Two evaluations and the final one, within the part's budget.
      config.num_train_steps = 100
    workdir = os.path.join(scratch, f'determinism_{i}')
    t = time.time()
    train_lib.train_and_evaluate(config, workdir, overwrite=True)
    runs.append([{k: v for k, v in r.items() if k not in _TIMING}
                 for r in metrics.read_metrics(workdir)])
    rec.add('runs', {'wall_sec': time.time() - t, 'records': len(runs[-1])})
  rec['config'] = '%s.py:%s' % RUNS['nin_quarter'][:2]
  rec['dtype'], rec['setting'] = dtype, setting
  rec['steps'] = runs[0][-1].get('step') if runs[0] else None
  diff = _first_difference(*runs)
  rec['identical'] = diff is None
  if diff is not None:
    rec['first_difference'] = dict(zip(('record', 'field', 'first', 'second'), diff))
  rec.save()


# ----------------------------------------------------------------------------- training

# What each training part trains: a config (`file:variant`), overrides for the real data,
# and overrides that narrow it for --tiny.
RUNS = {
    'airbench': ('plain', 'airbench', {'dataset.validation_examples': 0},
                 {'model.widths': (8, 16, 16)}),
    'airbench_muon': ('plain', 'airbench_muon', {'dataset.validation_examples': 0},
                      {'model.widths': (8, 16, 16)}),
    'nin_quarter': ('nin', 'fast', {'model.width_divisor': 4}, {'model.width_divisor': 12}),
    'nin_quarter_muon': ('nin', 'fast,muon', {'model.width_divisor': 4},
                         {'model.width_divisor': 12}),
    'nin': ('nin', 'fast', {}, {'model.width_divisor': 12}),
    'googlenet': ('googlenet', 'fast', {},
                  {'model.blocks': ('3a', '3b'), 'model.stem_width': 16,
                   'model.width_divisor': 8}),
}


def run_config(part: str, tiny: bool, image_dir: str, dtype: str, seed: int):
  """The config a training part trains for one seed."""
  import importlib
  from configs import common
  module, variant, overrides, narrow = RUNS[part]
  config = importlib.import_module(f'configs.{module}').get_config(variant)
  items = dict(overrides)
  if tiny:
    items.update(narrow)
    if image_dir:  # A small generated folder: hold out a few images, train a few steps.
      items.update({'dataset.validation_examples': 20, 'batch_size': 16,
                    'eval_batch_size': 16, 'num_train_steps': 4})
    else:
      common.digits(config, keep_recipe=True)
      items.update({'batch_size': 32, 'eval_batch_size': 100, 'num_train_steps': 4})
  for key, value in items.items():
    node = config
    *path, last = key.split('.')
    for p in path:
      node = node[p]
    node[last] = value
  config.dataset.image_dir = image_dir
  config.dtype = dtype
  config.seed = seed
  return config


_KEPT = ('step', 'epochs', 'test_accuracy', 'test_accuracy_tta', 'val_accuracy',
         'best_val_accuracy', 'train_time_sec', 'train_flops', 'compile_sec', 'num_params',
         'images_per_sec', 'validation_examples', 'device_kind', 'platform')


def train(rec: Record, part: str, tiny: bool, image_dir: str, dtype: str, seeds: int,
          deadline: float, scratch: str) -> None:
  """Trains the part's config for seeds 0, 1, ... while the next one is expected to fit."""
  from nin.train import metrics
  from nin import train as train_lib
  from nin.errors import Interrupted
  rec['config'] = '%s.py:%s' % RUNS[part][:2]
  rec['dtype'] = dtype
  rec.save()
  last = None
  for seed in range(seeds):
    left = deadline - time.time()
    if last is not None and left < 1.1 * last:
      rec['stopped'] = (f'seed {seed} not started: {left:.0f} s of the budget left, the last '
                        f'run took {last:.0f} s')
      rec.save()
      break
    config = run_config(part, tiny, image_dir, dtype, seed)
    workdir = os.path.join(scratch, f'{part}_seed{seed}')
    t = time.time()
    try:
      final = train_lib.train_and_evaluate(config, workdir, overwrite=True)
    except Interrupted as e:  # The part's budget ran out mid-run: what it reached is kept.
      rec.add('interrupted', {'seed': seed, 'step': e.step, 'wall_sec': time.time() - t})
      raise
    last = time.time() - t
    run = {k: final.get(k) for k in _KEPT}
    run.update(seed=seed, wall_sec=last,
               val_curve=[[r['epoch'], r['val_accuracy']]
                          for r in metrics.read_metrics(workdir, 'eval')])
    rec.add('runs', run)
