r"""Benchmarks: training-step speed against the device's own matmul peak.

  python -m nin bench --models nin,googlenet,plain,airbench --impls dense,conv,einsum
  python -m nin bench --quick --out bench.json          # CI-sized: under two minutes on 2 cores

For every (model, 1x1 impl, dtype) it measures compile time, the median and
spread of the jitted training step (synthetic data on the device, after
warm-up; a model's variants and the peak matmul take turns in a few rounds, each
variant's steps in a row after an untimed one, so that drifting load on a shared
machine shifts them alike and no step pays for the switch from another), images/s,
FLOPs per step from XLA's own cost analysis, achieved FLOP/s, page faults per
step (nin/runtime/malloc.py), and the fraction of the practical peak: a large matmul
in the same dtype, timed in the same run. It also times the input side alone (on-device
batches with augmentation) and reports its throughput relative to training.
Ratios within one run are what to compare; absolute times move with load.
"""
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from nin import data, workdir
from nin.runtime import distributed
from nin.train import optim, steps, summary
from nin.data import pipeline
from nin.registry import build_model

FAMILIES = ('nin', 'googlenet', 'plain', 'airbench')


# What is timed, per family: the config users train by default (BatchNorm after
# every conv, dropout: `default`) and the paper's net without BatchNorm (`paper`);
# the CIFAR GoogLeNet with its BatchNorm; airbench94's net with its whole step
# (lookahead included), and airbench94_muon's (Muon's Newton-Schulz iterations included).
_VARIANTS = {'nin': ('default', 'paper'), 'googlenet': ('default',),
             'plain': ('default', 'paper'), 'airbench': ('airbench', 'airbench_muon')}
# --quick (CI) times GoogLeNet narrowed to blocks 3a and 3b: on a CPU, compiling and
# timing the whole network's training step took about half of the quick run.
_QUICK_VARIANTS = {**_VARIANTS, 'googlenet': ('smoke',),
                   'airbench': ('airbench,smoke', 'airbench_muon,smoke')}


def _config(family, variant):
  from configs import googlenet, nin, plain  # Configs are data: read here, not at import.
  module = {'nin': nin, 'googlenet': googlenet, 'plain': plain, 'airbench': plain}[family]
  return module.get_config(None if variant == 'default' else variant)


def _timed(fn, repeats):
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return times


def matmul_peak_fn(dtype='float32', n=2048):
  """A compiled n x n x n matmul and its FLOPs: the practical peak of this device.

  It accumulates in float32 whatever the inputs, as the models' bfloat16 layers
  do (nin/layers/conv.py), so that a bfloat16 step's share of the peak compares it
  with the path its own dots take.
  """
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  f = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
  jax.block_until_ready(f(a, b))
  return (lambda: f(a, b)), 2 * n ** 3


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0))


def _spread(times):
  q = np.percentile(times, [25, 75])
  return {'median': statistics.median(times), 'iqr': float(q[1] - q[0]),
          'min': min(times), 'max': max(times)}


def prepare_train_step(family, impl, dtype, batch_size, mesh, quick=False,
                       variant=None) -> dict:
  """Compiles one model's training step on synthetic device data; returns what timing needs."""
  variant = variant or (_QUICK_VARIANTS if quick else _VARIANTS)[family][0]
  config = _config(family, variant)
  config.model.impl = impl
  config.dtype = dtype
  config.batch_size = batch_size
  spe, total = 100, 10_000
  model = steps.model_for(config)
  tx = optim.make_optimizer(config, optim.make_schedule(config, spe, total))
  shape = (config.dataset.image_size, config.dataset.image_size, 3)
  state = steps.initial_state_fn(config, model, tx, shape, mesh, fit_data=False)(0, None)
  images = jax.device_put(jax.random.normal(jax.random.key(1), (batch_size, *shape)),
                          distributed.batch_sharded(mesh))
  labels = jax.device_put(jnp.arange(batch_size) % config.model.num_classes,
                          distributed.batch_sharded(mesh))
  train_fn, _ = steps.compile_steps(config, mesh, config.model.num_classes, total_steps=total)
  t = time.perf_counter()
  compiled = train_fn.lower(state, images, labels).compile()
  compile_sec = time.perf_counter() - t
  macs = summary.totals(summary.summarize(build_model(config.model), shape))['macs']
  forward = jax.jit(lambda s, x: s.apply_fn(steps.variables_of(s), x, train=False))
  forward_flops = _flops(forward.lower(state, images).compile())
  return {'meta': {'model': family, 'variant': variant, 'impl': impl, 'dtype': dtype,
                   'batch_size': batch_size,
                   'compile_sec': compile_sec, 'flops_per_step': _flops(compiled),
                   'forward_flops': forward_flops, 'model_macs_per_image': macs},
          'step': compiled, 'args': [state, images, labels], 'times': [], 'faults': 0}


def time_step(p, timed=True) -> None:
  """Runs one more step of a prepared configuration, adding its time and page faults
  (unless not `timed`)."""
  faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  t = time.perf_counter()
  state, m = p['step'](*p['args'])
  jax.block_until_ready(m)
  p['args'][0] = state
  if timed:
    p['times'].append(time.perf_counter() - t)
    p['faults'] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def step_figures(p) -> dict:
  r, times = dict(p['meta']), p['times']
  spread = _spread(times)
  macs, flops, forward_flops = r['model_macs_per_image'], r['flops_per_step'], r['forward_flops']
  r.update({
      'step_sec': spread, 'images_per_sec': r['batch_size'] / spread['median'],
      # XLA counts only the taps that land inside the image (not the zero padding),
      # so its forward FLOPs sit a few percent under 2 x MACs; a step is ~3 forwards.
      'forward_flops_over_2_macs': forward_flops / (2 * macs * r['batch_size']),
      'step_flops_over_forward': flops / forward_flops,
      'achieved_flops_per_sec': flops / spread['median'],
      # Memory the step maps afresh shows up here (nin/runtime/malloc.py); near 0 is healthy.
      'page_faults_per_step': p['faults'] / len(times)})
  return r


def loop_throughput(family, variant, dtype, batch_size, steps, workdir, log_every=5) -> dict:
  """The training loop's own speed: `nin.train.loop` runs `steps` steps of the config on
  synthetic data in `workdir` (evaluating and saving only at the end); its img/s is
  the median of its train records (which leave out compilation, evaluation and
  saving), so that what the loop adds to the step (input, logging) shows."""
  from nin.train import metrics
  from nin import train
  config = _config(family, variant)
  config.dtype, config.batch_size = dtype, batch_size
  config.dataset.name = 'synthetic'
  config.dataset.validation_examples = batch_size
  config.dataset.synthetic_train = batch_size * (steps + 1)
  config.dataset.synthetic_test = batch_size
  config.num_train_steps, config.log_every_steps = steps, log_every
  config.eval_every_epochs = float(steps)  # Only at the end.
  config.eval_batch_size = batch_size
  train.train_and_evaluate(config, workdir, overwrite=True, handle_signals=False)
  rates = [r['images_per_sec'] for r in metrics.read_metrics(workdir, 'train')
           if r.get('images_per_sec')]
  return {'model': family, 'variant': variant, 'dtype': dtype, 'steps': steps,
          'images_per_sec': statistics.median(rates), 'records': len(rates)}


def bench_input(batch_size, steps, mesh, num_train=10_000) -> dict:
  ds = data.synthetic(num_train, 100, 32)
  pipe = pipeline.Pipeline(ds, mesh, batch_size, 100, seed=0)
  jax.block_until_ready(pipe.train_batch(0, 0))
  spe = pipe.steps_per_epoch
  times = _timed(lambda: pipe.train_batch(1, np.random.randint(spe)), steps)
  spread = _spread(times)
  return {'batch_size': batch_size, 'batch_sec': spread,
          'batches_per_sec': 1 / spread['median'],
          'images_per_sec': batch_size / spread['median']}


def _cpu() -> str:
  """The processor's model and its matrix/low-precision features (Linux), or ''."""
  try:
    with open('/proc/cpuinfo') as f:
      info = f.read()
  except OSError:
    return ''
  model = next((line.split(':', 1)[1].strip() for line in info.splitlines()
                if line.startswith('model name')), '')
  flags = next((line.split(':', 1)[1].split() for line in info.splitlines()
                if line.startswith('flags')), [])
  wanted = [f for f in flags if f.startswith(('amx', 'avx512_bf16', 'avx512_fp16', 'avx512f'))]
  return ' '.join([model, *sorted(wanted)]).strip()


def environment() -> dict:
  import flax
  import optax
  d = jax.devices()[0]
  return {'platform': jax.default_backend(), 'device_kind': d.device_kind,
          'device_count': jax.device_count(), 'python': platform.python_version(),
          'jax': jax.__version__, 'jaxlib': jax.lib.__version__ if hasattr(jax.lib, '__version__')
          else jax.__version__, 'flax': flax.__version__, 'optax': optax.__version__,
          'machine': platform.machine(), 'cpu': _cpu(),
          'xla_flags': os.environ.get('XLA_FLAGS', ''),
          'glibc_tunables': os.environ.get('GLIBC_TUNABLES', '')}


def run(models, impls, dtypes, batch_size, steps, warmup, matmul_n, quick=False,
        loop_steps=0, blocks=2) -> dict:
  """Times every configuration of a model in `blocks` rounds; in each round, each
  configuration runs its share of the `steps` in a row, after one untimed step, and
  the peak matmul takes a sample: drifting load then shifts all of them alike.

  Why in a row: a step that follows another compiled program runs slower than the
  next one (with the project's malloc settings, NiN with BatchNorm 10% slower when it
  alternated with a bfloat16 step and the bfloat16 matmul; docs/bench/bench_vs_loop.md),
  and a training loop never alternates. Timed one step per round, as this bench once
  was, NiN's step read up to 1.5 times slower than the loop that runs it.
  """
  mesh = distributed.make_mesh()
  peak_fns = {dt: matmul_peak_fn(dt, matmul_n) for dt in dtypes}
  peak_times = {dt: _timed(fn, 5) for dt, (fn, _) in peak_fns.items()}
  results = []
  per_block = [len(b) for b in np.array_split(np.arange(steps), min(blocks, steps))]
  for family in models:
    # plain and airbench have no 1x1 layer; in quick mode GoogLeNet (slow on a CPU) runs
    # one impl; a family's default config is timed with the first impl only.
    family_impls = impls if family == 'nin' or (family == 'googlenet' and not quick) else impls[:1]
    variants = (_QUICK_VARIANTS if quick else _VARIANTS)[family]
    prepared = [prepare_train_step(family, impl, dtype, batch_size, mesh, quick, variant)
                for dtype in dtypes for variant in variants
                for impl in (family_impls if variant == variants[-1] else impls[:1])]
    for p in prepared:
      for _ in range(warmup):
        time_step(p, timed=False)
    for n in per_block:
      for p in prepared:
        time_step(p, timed=False)  # The step after a switch of programs.
        for _ in range(n):
          time_step(p)
      for dt, (fn, _) in peak_fns.items():
        peak_times[dt] += _timed(fn, 1)
    for p in prepared:
      r = step_figures(p)
      results.append(r)
      print(f"  {family:<10} {r['variant']:<15} {r['impl']:<7} {r['dtype']:<9} "
            f"{r['images_per_sec']:8.1f} img/s "
            f"{r['achieved_flops_per_sec'] / 1e9:6.1f} GFLOP/s", file=sys.stderr, flush=True)
    del prepared
  peaks = {dt: peak_fns[dt][1] / statistics.median(t) for dt, t in peak_times.items()}
  for r in results:  # Against the peak over the whole run, as the table states it.
    r['fraction_of_peak'] = r['achieved_flops_per_sec'] / peaks[r['dtype']]
  loops = []
  # The config users train (each family's first variant, first impl); --quick: NiN's only.
  for family in (models[:1] if quick else models) if loop_steps else ():
    for dtype in dtypes:
      variant = (_QUICK_VARIANTS if quick else _VARIANTS)[family][0]
      with tempfile.TemporaryDirectory() as workdir:
        loop = loop_throughput(family, variant, dtype, batch_size, loop_steps, workdir)
      step = next(r for r in results if (r['model'], r['variant'], r['dtype'])
                  == (family, loop['variant'], dtype))
      loop['ratio_to_step'] = loop['images_per_sec'] / step['images_per_sec']
      loops.append(loop)
      print(f"  {family:<10} {loop['variant']:<15} loop    {dtype:<9} "
            f"{loop['images_per_sec']:8.1f} img/s ({loop['ratio_to_step']:.2f}x the step)",
            file=sys.stderr, flush=True)
  inp = bench_input(batch_size, max(steps, 10), mesh)
  fastest = {}
  for r in results:
    fastest[r['model']] = max(fastest.get(r['model'], 0), r['images_per_sec'])
  inp['ratio_to_training'] = {m: inp['images_per_sec'] / v for m, v in fastest.items()}
  return {'environment': environment(), 'matmul_peak_flops_per_sec': peaks,
          'settings': {'batch_size': batch_size, 'steps': steps, 'warmup': warmup,
                       'blocks': len(per_block), 'matmul_n': matmul_n, 'quick': quick},
          'train_step': results, 'loop': loops, 'input': inp}


def markdown(res) -> str:
  env = res['environment']
  lines = [f"Device: {env['device_count']} x {env['device_kind']} ({env['platform']}); "
           f"jax {env['jax']}, flax {env['flax']}; batch {res['settings']['batch_size']}"
           + ('; --quick: GoogLeNet narrowed to blocks 3a, 3b, airbench to widths 8/16/16.'
              if res['settings'].get('quick')
              else '.'),
           'Matmul peak: ' + ', '.join(f'{k} {v / 1e9:.0f} GFLOP/s'
                                       for k, v in res['matmul_peak_flops_per_sec'].items()), '',
           '| model | variant | 1x1 impl | dtype | compile (s) | step (ms, median ± IQR) | img/s '
           '| GFLOP/step | GFLOP/s | of peak |',
           '|---|---|---|---|---:|---:|---:|---:|---:|---:|']
  for r in res['train_step']:
    s = r['step_sec']
    lines.append(f"| {r['model']} | {r['variant']} | {r['impl']} | {r['dtype']} "
                 f"| {r['compile_sec']:.1f} "
                 f"| {s['median'] * 1e3:.1f} ± {s['iqr'] * 1e3:.1f} | {r['images_per_sec']:.1f} "
                 f"| {r['flops_per_step'] / 1e9:.2f} | {r['achieved_flops_per_sec'] / 1e9:.1f} "
                 f"| {r['fraction_of_peak']:.1%} |")
  if res.get('loop'):
    lines += ['', '| model | variant | dtype | training loop img/s | loop / step |',
              '|---|---|---|---:|---:|']
    lines += [f"| {l['model']} | {l['variant']} | {l['dtype']} | {l['images_per_sec']:.1f} "
              f"| {l['ratio_to_step']:.2f} |" for l in res['loop']]
  inp = res['input']
  ratios = ', '.join(f'{m} {v:.0f}x' for m, v in inp['ratio_to_training'].items())
  lines += ['', f"Input side: {inp['images_per_sec']:.0f} img/s "
                f"({inp['batches_per_sec']:.1f} batches/s); relative to training: {ratios}."]
  return '\n'.join(lines)


def check_flags(f) -> None:
  """Every bad flag, before anything is timed: a wrong one would waste the whole run."""
  from nin import layers
  from nin.errors import ConfigError
  from nin.train.validate import DTYPES
  for name, values, valid in (('models', f.models, FAMILIES), ('impls', f.impls, layers.IMPLS),
                              ('dtypes', f.dtypes, DTYPES)):
    bad = [v for v in values if v not in valid]
    if bad or not values:
      raise ConfigError(f'--{name}={",".join(values)}: unknown {", ".join(bad) or "(empty)"}; '
                        f'valid: {", ".join(valid)}')
  if f.loop_steps and f.loop_steps < 11:
    raise ConfigError(f'--loop_steps={f.loop_steps}: use 0 (off) or at least 11 (two records '
                      f'of 5 steps after the first)')
  for name in ('batch_size', 'steps', 'matmul_n', 'blocks'):
    if getattr(f, name) <= 0:
      raise ConfigError(f'--{name}={getattr(f, name)} must be positive')
  if f.warmup < 0:
    raise ConfigError(f'--warmup={f.warmup} must be 0 or more')
  if f.out and not os.path.isdir(os.path.dirname(os.path.abspath(f.out))):
    raise ConfigError(f'--out={f.out}: the folder {os.path.dirname(os.path.abspath(f.out))} '
                      f'does not exist')
  if f.out:  # Refused before the timing, not after it.
    workdir.check_writable(os.path.dirname(os.path.abspath(f.out)), 'the folder of --out',
                           files=(os.path.basename(f.out),))


def define_flags():
  from absl import flags
  flags.DEFINE_list('models', list(FAMILIES), 'Model families to time.')
  flags.DEFINE_list('impls', ['dense', 'conv', 'einsum'], 'How 1x1 layers run.')
  flags.DEFINE_list('dtypes', ['float32'], 'Compute dtypes: float32, bfloat16.')
  flags.DEFINE_integer('batch_size', 128, 'Global batch size.')
  flags.DEFINE_integer('steps', 10, 'Timed steps per configuration.')
  flags.DEFINE_integer('warmup', 2, 'Untimed steps after compilation.')
  flags.DEFINE_integer('blocks', 2, 'Rounds over the configurations: each runs its share of '
                       '--steps in a row per round, after one untimed step.')
  flags.DEFINE_integer('matmul_n', 2048, 'Size of the peak-measuring matmul.')
  flags.DEFINE_bool('quick', False, 'Batch 8, 2 steps, a 1024 matmul, a narrow GoogLeNet: for CI.')
  flags.DEFINE_string('out', '', 'Write the results as JSON here.')
  flags.DEFINE_integer('loop_steps', 0, 'Also run the training loop (nin.train.loop) this many steps '
                       'on each family\'s default config and compare its img/s with the step\'s '
                       '(0: off).')


def main(argv):
  from absl import flags
  del argv
  f = flags.FLAGS
  return _main(f)


def _main(f):
  check_flags(f)
  if f.quick:
    res = run(f.models, f.impls, f.dtypes, 8, 2, 1, 1024, quick=True, loop_steps=11, blocks=1)
  else:
    res = run(f.models, f.impls, f.dtypes, f.batch_size, f.steps, f.warmup, f.matmul_n,
              loop_steps=f.loop_steps, blocks=f.blocks)
  print(markdown(res))
  if f.out:
    with open(f.out, 'w') as fh:
      json.dump(res, fh, indent=1)
