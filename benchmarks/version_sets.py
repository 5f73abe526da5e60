r"""The two version sets of constraints.txt timed in one sitting, taking turns.

  benchmarks/version_sets.py run OUT_DIR --rounds 2      # alternates the two interpreters
  benchmarks/version_sets.py table OUT_DIR > OUT_DIR/README.md

`run` times `python -m nin bench` (NiN, the 3x3 net and airbench94's net, float32
and bfloat16, the bench's batch of 128) under Python 3.11's set (.venv) and
Python 3.12's (.venv-newer, as .ci/run builds it), one after the other, for
--rounds rounds: a load that drifts over the sitting shifts both alike. Each
run's JSON is kept (`<jax version>_round<k>.json`); `table` reads them alone.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHONS = ('.venv/bin/python', '.venv-newer/bin/python')
BENCH = ['-m', 'nin', 'bench', '--models', 'nin,plain,airbench', '--impls', 'dense',
         '--dtypes', 'float32,bfloat16', '--steps', '6', '--warmup', '1', '--blocks', '2']


def run(out: str, rounds: int) -> None:
  os.makedirs(out, exist_ok=True)
  for k in range(rounds):
    for python in PYTHONS:
      exe = os.path.join(ROOT, python)
      jax_version = subprocess.check_output(
          [exe, '-c', 'import jax; print(jax.__version__)'], text=True).strip()
      path = os.path.join(out, f'{jax_version}_round{k}.json')
      print(f'round {k}: jax {jax_version} -> {path}', flush=True)
      subprocess.run([exe, *BENCH, '--out', path], cwd=ROOT, check=True,
                     stdout=subprocess.DEVNULL)


def table(out: str) -> str:
  """Median img/s per (model, variant, dtype) and set, over the rounds, and their ratio."""
  runs = {}
  for path in sorted(glob.glob(os.path.join(out, '*_round*.json'))):
    with open(path) as f:
      res = json.load(f)
    runs.setdefault(res['environment']['jax'], []).append(res)
  if len(runs) != 2:
    raise SystemExit(f'{out}: runs of {len(runs)} jax versions, not 2')
  old, new = sorted(runs, key=lambda v: tuple(int(x) for x in v.split('.')))
  env = {v: runs[v][0]['environment'] for v in (old, new)}

  def ips(version):
    by = {}
    for res in runs[version]:
      for r in res['train_step']:
        by.setdefault((r['model'], r['variant'], r['dtype']), []).append(r['images_per_sec'])
    return {k: statistics.median(v) for k, v in by.items()}

  a, b = ips(old), ips(new)
  lines = [f'# jax {old} against jax {new} on this CPU', '',
           f'One sitting: `benchmarks/version_sets.py run`, {len(runs[old])} round(s), the two '
           f'sets taking turns (`{" ".join(BENCH)}`). Python {env[old]["python"]} with jax '
           f'{old}, flax {env[old]["flax"]}; Python {env[new]["python"]} with jax {new}, flax '
           f'{env[new]["flax"]}. Median img/s over the rounds; the files are beside this one.',
           '', f'| model | variant | dtype | jax {old} | jax {new} | {new} / {old} |',
           '|---|---|---|---:|---:|---:|']
  ratios = []
  for key in sorted(a):
    if key in b:
      ratios.append(b[key] / a[key])
      lines.append(f'| {key[0]} | {key[1]} | {key[2]} | {a[key]:.1f} | {b[key]:.1f} | '
                   f'{b[key] / a[key]:.2f} |')
  peak = {v: statistics.median(r['matmul_peak_flops_per_sec']['float32'] for r in runs[v])
          for v in (old, new)}
  lines += ['', f'Geometric mean of the ratios: {statistics.geometric_mean(ratios):.2f}. '
                f'Float32 matmul peak, median: {peak[old] / 1e9:.0f} GFLOP/s (jax {old}), '
                f'{peak[new] / 1e9:.0f} GFLOP/s (jax {new}).']
  return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('what', choices=('run', 'table'))
  p.add_argument('out')
  p.add_argument('--rounds', type=int, default=2)
  args = p.parse_args(argv)
  if args.what == 'run':
    run(args.out, args.rounds)
  else:
    print(table(args.out), end='')
  return 0


if __name__ == '__main__':
  sys.exit(main())
