r"""Does a training step run slower right after another compiled program? (`nin.checks.bench`)

  GLIBC_TUNABLES=$(.venv/bin/python -c 'from nin.runtime import malloc; print(malloc.TUNABLES)') \
      .venv/bin/python benchmarks/step_after_switch.py --model nin --variant default

Times one configuration's jitted training step (nin.checks.bench's preparation,
synthetic data, batch 128) three ways in one process: steps in a row; the same
step alternating with a second program (the same net's bfloat16 step and a
2048^3 bfloat16 matmul, as nin.checks.bench's rounds once interleaved them); and in a
row again. Then the training loop (nin.train.loop) on the same config, whose
images/s `nin.checks.bench --loop_steps` compares with the step's. Prints one JSON
line. Run it with the malloc settings the CLIs use (GLIBC_TUNABLES as
nin/runtime/malloc.py sets them): the effect showed with them, not without.
"""
import argparse
import json
import statistics
import tempfile

from nin.runtime import xla_flags
xla_flags.configure()

import jax  # noqa: E402

from nin.checks import bench
from nin.runtime import distributed  # noqa: E402


def _rate(p, n, other=()):
  p['times'] = []
  for _ in range(n):
    bench.time_step(p)
    for q in other:
      q()
  return p['meta']['batch_size'] / statistics.median(p['times'])


def main():
  a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  a.add_argument('--model', default='nin', choices=bench.FAMILIES)
  a.add_argument('--variant', default='default')
  a.add_argument('--steps', type=int, default=8)
  a.add_argument('--loop_steps', type=int, default=21)
  f = a.parse_args()
  mesh = distributed.make_mesh()
  p = bench.prepare_train_step(f.model, 'dense', 'float32', 128, mesh, variant=f.variant)
  q = bench.prepare_train_step(f.model, 'dense', 'bfloat16', 128, mesh, variant=f.variant)
  peak, _ = bench.matmul_peak_fn('bfloat16', 2048)
  for _ in range(2):
    bench.time_step(p), bench.time_step(q)
  out = {'model': f.model, 'variant': f.variant, 'batch_size': 128,
         'in_a_row': _rate(p, f.steps),
         'alternating': _rate(p, f.steps, [lambda: bench.time_step(q),
                                           lambda: jax.block_until_ready(peak())]),
         'in_a_row_again': _rate(p, f.steps)}
  with tempfile.TemporaryDirectory() as workdir:
    loop = bench.loop_throughput(f.model, f.variant, 'float32', 128, f.loop_steps, workdir)
  out['loop'] = loop['images_per_sec']
  out['loop_over_in_a_row'] = out['loop'] / out['in_a_row']
  out['loop_over_alternating'] = out['loop'] / out['alternating']
  print(json.dumps(out), flush=True)


if __name__ == '__main__':
  main()
