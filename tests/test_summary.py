"""The summary tool: rows per block and layer, counts from the model itself."""
import json
import os
import subprocess
import sys

from configs import nin as nin_config
from nin import registry
from nin.train import summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_nin_rows_have_exact_counts():
  rows = summary.summarize(registry.build_model(nin_config.get_config('paper').model))
  by_name = {r.name: r for r in rows}
  # conv1 of the paper: 5x5x3x192 weights + 192 biases, 32x32 outputs.
  assert by_name['block1/conv'].params == 5 * 5 * 3 * 192 + 192
  assert by_name['block1/conv'].macs == 32 * 32 * 5 * 5 * 3 * 192
  assert by_name['block1/mlp1'].macs == 32 * 32 * 192 * 160  # A Dense per pixel.
  assert by_name['pool1'].output_shape == (16, 16, 96)
  assert (by_name['pool1'].kind, by_name['pool2'].kind) == ('MaxPool', 'AvgPool')
  assert by_name['block3'].output_shape == (8, 8, 10)
  blocks = [r for r in rows if r.depth == 1 and r.name.startswith('block')]
  for b in blocks:  # A block's numbers are the sums of its layers'.
    inside = [r for r in rows if r.name.startswith(b.name + '/')]
    assert b.params == sum(r.params for r in inside) and b.macs == sum(r.macs for r in inside)
  assert summary.totals(rows) == {'params': 966_986, 'macs': 222_486_528}


def test_cli_prints_a_table_and_json():
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  cmd = [sys.executable, '-m', 'nin', 'summary', '--config', 'configs/googlenet.py:smoke']
  table = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
  assert '3a' in table.stdout and 'pool_proj' in table.stdout and 'total' in table.stdout
  out = subprocess.run(cmd + ['--json'], cwd=ROOT, env=env, capture_output=True, text=True,
                       check=True)
  data = json.loads(out.stdout)
  names = [r['name'] for r in data['rows']]
  assert names.index('3a') < names.index('3a/1x1') < names.index('3b')
  assert data['totals']['params'] == sum(r['params'] for r in data['rows'] if r['depth'] == 1)
