"""The one-call accelerator check (nin.checks.device_check): its --tiny run on this CPU, and the
settings that must not reach an accelerator."""
import json
import os
import subprocess
import sys

import pytest

import runs
import test_image_folder
from nin.checks import device_check, device_parts, device_report


@pytest.mark.gpu_path
def test_tiny_check_runs_every_part_on_an_image_folder(tmp_path):
  images = tmp_path / 'cifar'
  test_image_folder.make_tree(str(images), per_class=(6, 2))
  out = tmp_path / 'out'
  env = dict(runs.env(), XDG_CACHE_HOME=str(tmp_path / 'cache'))
  # 720 s rather than the default 540: every part must finish inside its share, and a CPU
  # shared with other tests runs them up to twice as slowly (quiet, they take about 260 s).
  p = subprocess.run([sys.executable, '-m', 'nin', 'device_check', '--tiny', '--seeds=1',
                      '--budget_sec=720', f'--out={out}', f'--image_dir={images}'],
                     cwd=runs.ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stdout + p.stderr + (out / 'device_check.log').read_text()
  res = json.loads((out / 'device_check.json').read_text())
  parts = res['parts']
  assert list(parts) == ['environment', 'gradients', 'bench', 'airbench', 'airbench_muon',
                         'nin_quarter', 'nin_quarter_muon', 'nin', 'googlenet', 'determinism',
                         'peers']
  assert all(p['status'] == 'ok' for p in parts.values()), parts
  env_part = parts['environment']
  assert env_part['platform'] == 'cpu' and env_part['tensorflow_imported'] is False
  # On a CPU alone the project's CPU flag is set (runs.env sets XLA_FLAGS, so it is appended).
  assert env_part['accelerator_plugins'] == [] and env_part['cpu_xla_flags_set'] is True
  checks = parts['gradients']['checks']
  assert [(c['dtype'], c['matmul_precision']) for c in checks] == [
      ('float32', 'highest'), ('float32', 'default'), ('bfloat16', 'default')]
  assert all(c['ok'] and c['max_error_over_max_gradient'] < c['tolerance'] for c in checks)
  steps = parts['bench']['train_step']
  assert {r['model'] for r in steps} == {'nin', 'airbench'}
  for r in steps:
    assert r['images_per_sec'] > 0 and 0 < r['fraction_of_peak']
    assert set(r['matrix_product_operands']) == {'f32'}  # float32 steps: float32 products.
  for part in ('airbench', 'airbench_muon', 'nin_quarter', 'nin_quarter_muon', 'nin', 'googlenet'):
    [run] = parts[part]['runs']
    assert run['step'] == 4 and 0 <= run['test_accuracy'] <= 1 and run['seed'] == 0
    assert run['platform'] == 'cpu' and parts[part]['dtype'] == 'float32'
  assert parts['nin']['runs'][0]['val_curve'][-1][1] == parts['nin']['runs'][0]['val_accuracy']
  # Trained twice with deterministic=True: on the CPU every record is the same.
  det = parts['determinism']
  assert det['identical'] is True and det['setting'].startswith('the CPU')
  assert [r['records'] for r in det['runs']] == [det['runs'][0]['records']] * 2
  # PyTorch is not a dependency: without it, the part says so.
  assert parts['peers'].get('skipped') or parts['peers'].get('train_step')
  md = (out / 'device_check.md').read_text()
  assert md == device_report.markdown(res)  # The summary is rendered from the JSON alone.
  assert '**--tiny**' in md and '## nin: `nin.py:fast`, float32' in md
  assert '===== googlenet' in (out / 'device_check.log').read_text()
  assert '| `airbench` / `airbench_muon` | 1 / 1 |' in md  # Muon against SGD, per pair.
  assert 'Every record identical (timing aside)' in md


def test_the_determinism_part_names_the_first_difference():
  a = [{'kind': 'train', 'step': 2, 'loss': 1.5}, {'kind': 'eval', 'step': 4, 'val_loss': 1.0}]
  b = [{'kind': 'train', 'step': 2, 'loss': 1.5}, {'kind': 'eval', 'step': 4, 'val_loss': 1.25}]
  assert device_parts._first_difference(a, [dict(r) for r in a]) is None
  assert device_parts._first_difference(a, b) == (1, 'val_loss', 1.0, 1.25)
  assert device_parts._first_difference(a, a[:1]) == (1, '(records)', 2, 1)
  md = device_report.markdown({'parts': {'determinism': {
      'identical': False, 'config': 'nin.py:fast', 'dtype': 'bfloat16', 'setting': 'x',
      'steps': 4, 'runs': [{'records': 3, 'wall_sec': 1.0}] * 2,
      'first_difference': {'record': 1, 'field': 'val_loss', 'first': 1.0, 'second': 1.25}}}})
  assert '**The runs differ**: record 1, `val_loss`: 1.0 against 1.25.' in md


def test_a_part_that_takes_its_grace_leaves_the_later_parts_their_share():
  parts = ['nin', 'environment', 'determinism']
  wanted = sum(device_check.BUDGETS[p] for p in parts)
  assert device_check._budget('nin', parts, False, wanted + 30) == device_check.BUDGETS['nin']
  left = 100.0  # Less than the 110 s the three want.
  nin = device_check._budget('nin', parts, False, left)
  # Stopped at its budget, NiN may overrun by the grace; what is left still holds the later
  # parts' shares of what NiN's share came from.
  later = left - nin - device_check._GRACE_SEC
  shared = left - device_check._GRACE_SEC
  assert later == pytest.approx(shared * (wanted - device_check.BUDGETS['nin']) / wanted)
  # The last part has no one to leave time for: it gets all that is left, up to its own.
  assert device_check._budget('determinism', ['determinism'], False, 25.0) == 25.0
  assert device_check._budget('nin', parts, False, 20.0) == 0.0


def test_a_part_past_its_budget_is_stopped_and_the_next_runs(tmp_path):
  out = tmp_path / 'out'
  p = subprocess.run([sys.executable, '-m', 'nin', 'device_check', '--tiny', '--seeds=50',
                      '--parts=nin,environment', '--budget_sec=90', f'--out={out}'],
                     cwd=runs.ROOT, env=runs.env(), capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr
  parts = json.loads((out / 'device_check.json').read_text())['parts']
  # 90 s is less than the two parts' budgets (210 s): NiN gets its share (five sevenths) of
  # what is left once its 30 s of grace is set aside, 43 s, which cannot hold fifty tiny runs
  # (the first alone takes 20 to 35 s here, and a run is not started that would not fit).
  # Even a NiN part that takes all its grace leaves the environment part its own share.
  nin = parts['nin']
  assert 42 < nin['budget_sec'] < 43 and nin['wall_sec'] < 43 + 35  # Its share, the grace.
  assert len(nin.get('runs', [])) < 50
  assert nin.get('stopped') or nin.get('interrupted') or nin['status'] == 'stopped at its budget'
  assert parts['environment']['status'] == 'ok' and parts['environment']['platform'] == 'cpu'


def test_bad_flags_are_one_line():
  p = subprocess.run([sys.executable, '-m', 'nin', 'device_check', '--out=/tmp/x',
                      '--parts=bench,gpu'], cwd=runs.ROOT, env=runs.env(),
                     capture_output=True, text=True, timeout=120)
  assert p.returncode == 2
  assert p.stderr.strip() == ('Error: --parts=bench,gpu: unknown gpu; valid: environment, '
                              'gradients, bench, airbench, airbench_muon, nin_quarter, '
                              'nin_quarter_muon, nin, googlenet, determinism, peers')


def test_hlo_matrix_products_are_counted_by_operand_type():
  import jax
  import jax.numpy as jnp
  f = jax.jit(lambda a, b, k: (jnp.dot(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16),
                                       preferred_element_type=jnp.float32),
                               jax.lax.conv_general_dilated(
                                   a[None, :, :, None], k, (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))))
  text = f.lower(jnp.ones((16, 16)), jnp.ones((16, 16)), jnp.ones((3, 3, 1, 2))).compile().as_text()
  counts = device_parts.hlo_dot_dtypes(text)
  assert counts.get('bf16') == 1 and sum(counts.values()) == 2, counts


def _fake_plugin(tmp_path):
  """A distribution that declares a JAX plugin entry point, as jax-cuda*-plugin does."""
  info = tmp_path / 'jax_fake_plugin-1.0.dist-info'
  info.mkdir()
  (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: jax-fake-plugin\nVersion: 1.0\n')
  (info / 'entry_points.txt').write_text('[jax_plugins]\nxla_fake = jax_fake_plugin\n')
  return str(tmp_path)


def test_cpu_settings_stay_off_where_an_accelerator_plugin_is_installed(tmp_path):
  code = ('import os; from nin.runtime import malloc, xla_flags; xla_flags.configure(); '
          'print(xla_flags.accelerator_plugins(), repr(os.environ.get("XLA_FLAGS", "")), '
          'malloc.wanted())')
  env = {k: v for k, v in os.environ.items()
         if k not in ('JAX_PLATFORMS', 'XLA_FLAGS', 'GLIBC_TUNABLES', 'NIN_XLA_FLAGS')}
  env['PYTHONPATH'] = os.pathsep.join([_fake_plugin(tmp_path), runs.ROOT])
  gpu = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       cwd=runs.ROOT, timeout=60)
  assert gpu.stdout.split() == ["['jax_fake_plugin']", "''", 'False'], gpu.stderr
  # JAX_PLATFORMS=cpu overrides the plugin: the CPU settings apply again.
  cpu = subprocess.run([sys.executable, '-c', code], env=dict(env, JAX_PLATFORMS='cpu'),
                       capture_output=True, text=True, cwd=runs.ROOT, timeout=60)
  assert 'ynn_fusion_type' in cpu.stdout, cpu.stderr
