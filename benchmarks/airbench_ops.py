r"""airbench's convolutions one by one, in JAX and in PyTorch: where a step's time goes.

  .venv/bin/python benchmarks/airbench_ops.py --out jax.json            # JAX (lax.conv)
  python benchmarks/airbench_ops.py --framework torch --out torch.json  # where PyTorch is installed
  .venv/bin/python benchmarks/airbench_ops.py --compare jax.json torch.json

Each of the net's seven convolutions (shapes of models/plain.py:Airbench at the
given batch, NHWC / channels_last, float32) is timed forward and backward
(gradients of input and kernel; the first conv's input needs none) as one
compiled call, the median of `--steps` calls after a warm-up; with its FLOP/s
and the fraction of a 2048^3 matmul timed in the same process. `--compare`
prints a markdown table of the two frameworks side by side. The whole step
less the sum of its convolutions is what BatchNorm, GELU, pooling and the
optimizer cost: `nin.checks.bench` and benchmarks/torch_airbench.py time the steps.
"""
import argparse
import json
import statistics
import time

# (name, input height = width, input channels, output channels, kernel, padding)
CONVS = (('whiten', 32, 3, 24, 2, 0),
         ('group1_conv1', 31, 24, 64, 3, 1), ('group1_conv2', 15, 64, 64, 3, 1),
         ('group2_conv1', 15, 64, 256, 3, 1), ('group2_conv2', 7, 256, 256, 3, 1),
         ('group3_conv1', 7, 256, 256, 3, 1), ('group3_conv2', 3, 256, 256, 3, 1))


def conv_flops(batch, hw, c_in, c_out, k, pad, input_grad=True) -> float:
  out = hw + 2 * pad - k + 1
  forward = 2 * batch * out * out * c_in * c_out * k * k
  return forward * (3 if input_grad else 2)


def _median_time(fn, steps, warmup, sync):
  for _ in range(warmup):
    sync(fn())
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def run_jax(batch, steps, warmup) -> dict:
  from nin.runtime import xla_flags
  xla_flags.configure()
  import jax
  import jax.numpy as jnp
  sync = jax.block_until_ready
  a = jax.random.normal(jax.random.key(0), (2048, 2048))
  mm = jax.jit(lambda a: a @ a)
  peak = 2 * 2048 ** 3 / _median_time(lambda: mm(a), 5, 2, sync)
  rows = []
  for i, (name, hw, c_in, c_out, k, pad) in enumerate(CONVS):
    x = jax.random.normal(jax.random.key(1), (batch, hw, hw, c_in))
    w = jax.random.normal(jax.random.key(2), (k, k, c_in, c_out)) * 0.05
    def f(x, w, pad=pad):
      return jax.lax.conv_general_dilated(x, w, (1, 1), [(pad, pad)] * 2,
                                          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    input_grad = i > 0
    def fwd_bwd(x, w, f=f, input_grad=input_grad):
      y, vjp = jax.vjp(f, x, w)
      gx, gw = vjp(y)
      return (gx, gw) if input_grad else gw
    g = jax.jit(fwd_bwd)
    sec = _median_time(lambda: g(x, w), steps, warmup, sync)
    rows.append({'name': name, 'sec': sec,
                 'flops': conv_flops(batch, hw, c_in, c_out, k, pad, input_grad)})
  return {'framework': 'jax', 'version': jax.__version__, 'batch_size': batch,
          'matmul_peak_flops_per_sec': peak, 'convs': rows}


def run_torch(batch, steps, warmup) -> dict:
  import torch
  sync = lambda _: None  # The CPU runs each op to completion before returning.
  a = torch.randn(2048, 2048)
  peak = 2 * 2048 ** 3 / _median_time(lambda: a @ a, 5, 2, sync)
  rows = []
  for i, (name, hw, c_in, c_out, k, pad) in enumerate(CONVS):
    input_grad = i > 0
    x = torch.randn(batch, c_in, hw, hw).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(input_grad)
    w = (torch.randn(c_out, c_in, k, k) * 0.05).contiguous(
        memory_format=torch.channels_last).requires_grad_(True)
    def fwd_bwd(x=x, w=w, pad=pad):
      y = torch.nn.functional.conv2d(x, w, padding=pad)
      return torch.autograd.grad(y, [x, w] if x.requires_grad else [w], y)
    sec = _median_time(fwd_bwd, steps, warmup, sync)
    rows.append({'name': name, 'sec': sec,
                 'flops': conv_flops(batch, hw, c_in, c_out, k, pad, input_grad)})
  return {'framework': 'pytorch', 'version': torch.__version__, 'batch_size': batch,
          'matmul_peak_flops_per_sec': peak, 'convs': rows}


def compare(a, b) -> str:
  lines = [f"Batch {a['batch_size']}, float32. Matmul peak: {a['framework']} "
           f"{a['matmul_peak_flops_per_sec'] / 1e9:.0f} GFLOP/s, {b['framework']} "
           f"{b['matmul_peak_flops_per_sec'] / 1e9:.0f} GFLOP/s.", '',
           f"| conv (forward + backward) | GFLOP | {a['framework']} ms | of peak "
           f"| {b['framework']} ms | of peak | {a['framework']} / {b['framework']} time |",
           '|---|---:|---:|---:|---:|---:|---:|']
  for ra, rb in zip(a['convs'], b['convs']):
    lines.append(f"| {ra['name']} | {ra['flops'] / 1e9:.2f} | {ra['sec'] * 1e3:.1f} "
                 f"| {ra['flops'] / ra['sec'] / a['matmul_peak_flops_per_sec']:.0%} "
                 f"| {rb['sec'] * 1e3:.1f} "
                 f"| {rb['flops'] / rb['sec'] / b['matmul_peak_flops_per_sec']:.0%} "
                 f"| {ra['sec'] / rb['sec']:.2f} |")
  ta, tb = (sum(r['sec'] for r in x['convs']) for x in (a, b))
  lines.append(f"| all seven | {sum(r['flops'] for r in a['convs']) / 1e9:.2f} | {ta * 1e3:.1f} "
               f"| | {tb * 1e3:.1f} | | {ta / tb:.2f} |")
  return '\n'.join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--framework', choices=('jax', 'torch'), default='jax')
  p.add_argument('--batch_size', type=int, default=128)
  p.add_argument('--steps', type=int, default=7)
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--out', default='')
  p.add_argument('--compare', nargs=2, metavar=('A.json', 'B.json'))
  a = p.parse_args()
  if a.compare:
    with open(a.compare[0]) as fa, open(a.compare[1]) as fb:
      print(compare(json.load(fa), json.load(fb)))
    return
  res = (run_jax if a.framework == 'jax' else run_torch)(a.batch_size, a.steps, a.warmup)
  text = json.dumps(res, indent=1)
  if a.out:
    with open(a.out, 'w') as f:
      f.write(text)
  print(text)


if __name__ == '__main__':
  main()
