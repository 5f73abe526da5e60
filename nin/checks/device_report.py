"""The Markdown summary of a `nin.checks.device_check` run, rendered from its JSON alone.

    python -m nin.checks.device_report docs/gpu/device_check.json   # prints the summary again

Every figure is read from the results; nothing here imports JAX.
"""
import json
import sys

from nin.experiments import stats

# Published, beside airbench's runs: the README of KellerJordan/cifar10-airbench (its table of
# legacy records: legacy/airbench94.py, timed with torch 2.4.1 on a 400 W A100); the
# accuracy is what that script returns, its test accuracy with test-time augmentation.
_AIRBENCH94 = ('airbench94 (legacy/airbench94.py of KellerJordan/cifar10-airbench) reports '
               'a mean of 94.01% test accuracy with test-time augmentation in 3.83 s on a '
               '400 W A100, on the original CIFAR-10 images')


def _pct(x):
  return '—' if x is None else f'{100 * x:.2f}%'


def _interval(values) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return '—'
  m = stats.mean_interval(values)
  if m['half_width'] is None:
    return f"{100 * m['mean']:.2f}% (one run)"
  return (f"{100 * m['mean']:.2f}% (95% interval {100 * m['low']:.2f}% to "
          f"{100 * m['high']:.2f}%, {m['n']} runs)")


def _environment(env) -> list:
  if not env.get('device_kind'):
    return []
  return [f"Device: {env.get('device_count')} x {env.get('device_kind')} "
          f"({env.get('platform')}); jax {env.get('jax')}, flax {env.get('flax')}, "
          f"optax {env.get('optax')}, Python {env.get('python')}.",
          f"XLA_FLAGS: `{env.get('xla_flags') or '(none)'}`; the project's CPU flags set: "
          f"{env.get('cpu_xla_flags_set')}; JAX's accelerator plugins: "
          f"{', '.join(env.get('accelerator_plugins') or []) or '(none)'}; TensorFlow "
          f"imported: {env.get('tensorflow_imported')}.", '']


def _gradients(g) -> list:
  if not g.get('checks'):
    return []
  lines = ['## Hand-written gradients against stock flax', '',
           '| dtype | matmul precision | max error / max gradient | tolerance | ok |',
           '|---|---|---:|---:|---|']
  lines += [f"| {c['dtype']} | {c['matmul_precision']} | {c['max_error_over_max_gradient']:.2e} "
            f"| {c['tolerance']:.0e} | {'yes' if c['ok'] else '**no**'} |" for c in g['checks']]
  return lines + ['', g['checks'][0]['what'] + f", input {g['checks'][0]['shape']}.", '']


def _bench(b) -> list:
  if not b.get('train_step'):
    return []
  peaks = b.get('matmul_peak_flops_per_sec', {})
  f32 = {(r['model'], r['variant'], r['impl']): r['images_per_sec']
         for r in b['train_step'] if r['dtype'] == 'float32'}
  lines = ['## Training step', '',
           f"Batch {b['settings']['batch_size']}; matmul peak "
           + ', '.join(f'{k} {v / 1e12:.1f} TFLOP/s' for k, v in peaks.items())
           + f" ({b['settings']['matmul_n']}-square, float32 accumulation).", '',
           '| model | variant | 1x1 impl | dtype | compile (s) | img/s | of peak | vs float32 '
           '| matrix products (operands: count) |',
           '|---|---|---|---|---:|---:|---:|---:|---|']
  for r in b['train_step']:
    base = f32.get((r['model'], r['variant'], r['impl']))
    ratio = f"{r['images_per_sec'] / base:.2f}x" if base and r['dtype'] != 'float32' else ''
    ops = ', '.join(f'{k}: {v}' for k, v in sorted(r.get('matrix_product_operands', {}).items()))
    lines.append(f"| {r['model']} | {r['variant']} | {r['impl']} | {r['dtype']} "
                 f"| {r['compile_sec']:.1f} | {r['images_per_sec']:.0f} "
                 f"| {r['fraction_of_peak']:.1%} | {ratio} | {ops} |")
  return lines + ['']


def _training(name, t) -> list:
  if not t.get('config'):
    return []
  lines = [f"## {name}: `{t['config']}`, {t.get('dtype')}", '']
  runs = t.get('runs', [])
  if runs:
    lines += ['| seed | steps | epochs | test | test, TTA | validation | training (s) '
              '| compile (s) | wall (s) | img/s |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    lines += [f"| {r['seed']} | {r['step']} | {r['epochs']:.1f} | {_pct(r['test_accuracy'])} "
              f"| {_pct(r.get('test_accuracy_tta'))} | {_pct(r.get('val_accuracy'))} "
              f"| {r['train_time_sec']:.1f} | {(r.get('compile_sec') or 0):.1f} "
              f"| {r['wall_sec']:.1f} | {(r.get('images_per_sec') or 0):.0f} |" for r in runs]
    lines += ['', f"Test accuracy: {_interval([r['test_accuracy'] for r in runs])}; with TTA: "
                  f"{_interval([r.get('test_accuracy_tta') for r in runs])}. "
                  f"{runs[0]['num_params']:,} parameters, "
                  f"{runs[0]['train_flops'] / 1e15:.3f} PFLOP of training per run."]
    if name == 'airbench':
      lines += ['', _AIRBENCH94 + '. On the JPEG-recompressed copy of the images that '
                'developers use, airbench94\'s own code reached 90.67% (docs/time_to_accuracy).']
  for i in t.get('interrupted', []):
    lines.append(f"Seed {i['seed']} stopped at step {i['step']} at the part's budget.")
  if t.get('stopped'):
    lines.append(t['stopped'] + '.')
  return lines + ['']


# Each pair trained under one protocol with SGD (A) and with Muon (B), on one device.
MUON_PAIRS = (('airbench', 'airbench_muon'), ('nin_quarter', 'nin_quarter_muon'))


def _mean(runs, key):
  values = [r[key] for r in runs if r.get(key) is not None]
  return sum(values) / len(values) if values else None


def _muon(parts) -> list:
  lines = []
  for a, b in MUON_PAIRS:
    ra, rb = parts.get(a, {}).get('runs', []), parts.get(b, {}).get('runs', [])
    if not (ra and rb):
      continue
    if not lines:
      lines = ['## Muon against SGD, on this device', '',
               '| pair | runs | test, TTA: SGD | Muon | Muon - SGD (95% interval) '
               '| training s: SGD | Muon | PFLOP: SGD | Muon |',
               '|---|---:|---:|---:|---|---:|---:|---:|---:|']
    key = 'test_accuracy_tta' if all(r.get('test_accuracy_tta') is not None
                                      for r in ra + rb) else 'test_accuracy'
    d = stats.difference({r['seed']: r[key] for r in rb}, {r['seed']: r[key] for r in ra})
    diff = f"{100 * d['mean']:+.2f}"
    if d['low'] is not None:
      diff += f" [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"
    lines.append(f"| `{a}` / `{b}` | {len(ra)} / {len(rb)} | {_pct(_mean(ra, key))} "
                 f"| {_pct(_mean(rb, key))} | {diff} | {_mean(ra, 'train_time_sec'):.1f} "
                 f"| {_mean(rb, 'train_time_sec'):.1f} | {_mean(ra, 'train_flops') / 1e15:.3f} "
                 f"| {_mean(rb, 'train_flops') / 1e15:.3f} |")
  if lines:
    lines += ['', 'Paired over the seeds both ran where at least two did (else Welch). The '
              'PFLOP count the model\'s forward and backward passes only (nin.train.summary); '
              'Muon\'s Newton-Schulz products are not in them.', '']
  return lines


def _peers(p) -> list:
  if p.get('skipped'):
    return ['## PyTorch', '', p['skipped'] + '.', '']
  if not p.get('train_step'):
    return []
  lines = ['## PyTorch (benchmarks/torch_nin.py)', '',
           '| model | variant | dtype | batch | img/s | torch |', '|---|---|---|---:|---:|---|']
  lines += [f"| {r['model']} | {r['variant']} | {r['dtype']} | {r['batch_size']} "
            f"| {r['images_per_sec']:.0f} | {r['torch']} |" for r in p['train_step']]
  return lines + ['']


def _determinism(d) -> list:
  if 'identical' not in d:
    return []
  runs = d.get('runs', [])
  walls = ' and '.join(f"{r['wall_sec']:.1f}" for r in runs)
  lines = [f"## Determinism: `{d['config']}` at a quarter width, {d.get('dtype')}, trained "
           f"twice from seed 0 with `deterministic=True`", '',
           f"Setting: {d.get('setting')}. {d.get('steps')} steps and {runs[0]['records']} "
           f"records per run; wall time {walls} s."]
  if d['identical']:
    lines.append('Every record identical (timing aside): the switch makes runs repeatable here.')
  else:
    f = d['first_difference']
    lines.append(f"**The runs differ**: record {f['record']}, `{f['field']}`: {f['first']} "
                 f"against {f['second']}.")
  return lines + ['']


def markdown(results) -> str:
  parts = results.get('parts', {})
  s = results.get('settings', {})
  lines = ['# Device check', '']
  if s.get('tiny'):
    lines += ['**--tiny**: narrow nets and a few steps, to test the code paths; no figure here '
              'measures anything.', '']
  lines += _environment(parts.get('environment', {}))
  lines += ['| part | status | wall (s) | budget (s) |', '|---|---|---:|---:|']
  lines += [f"| {name} | {p.get('status')} | {p.get('wall_sec', '')} "
            f"| {p.get('budget_sec', '')} |" for name, p in parts.items()]
  lines.append('')
  lines += _gradients(parts.get('gradients', {}))
  lines += _bench(parts.get('bench', {}))
  for name, part in parts.items():
    if name != 'determinism':
      lines += _training(name, part)  # The training parts: those that name a config.
  lines += _muon(parts)
  lines += _determinism(parts.get('determinism', {}))
  lines += _peers(parts.get('peers', {}))
  return '\n'.join(lines).rstrip() + '\n'


if __name__ == '__main__':
  with open(sys.argv[1]) as fh:
    print(markdown(json.load(fh)), end='')
