"""The fast protocol and airbench's net: whitening, alternating flips, lookahead, the
optimizer's groups, test-time augmentation, and training FLOPs."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import runs
from configs import common
from configs import googlenet as googlenet_config
from configs import nin as nin_config
from configs import plain as plain_config
from models import plain
from nin import data, registry, train
from nin.runtime import distributed
from nin.evaluation import evaluate
from nin.train import loop, optim, passes, steps, summary
from nin.data import pipeline
from nin.layers import whitening
from nin.data.datasets import Dataset


# ----------------------------------------------------------------------------- whitening

def _correlated_images(n=48, size=8, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, size, size, 3)).astype(np.float32)
  x[..., 1] += 0.8 * x[..., 0]              # Correlated channels,
  x[:, 1:] += 0.5 * x[:, :-1]                # and neighbouring pixels.
  return x


def test_whitening_filters_are_the_eigenvectors_of_the_patch_covariance():
  x = _correlated_images()
  # The patch second moment, computed here by hand from every 2x2 patch.
  patches = np.stack([x[:, i:i + 2, j:j + 2, :].reshape(len(x), -1)
                      for i in range(7) for j in range(7)], 1).reshape(-1, 12)
  cov = patches.T @ patches / len(patches)
  np.testing.assert_allclose(whitening.patch_covariance(x, 2), cov, rtol=1e-4, atol=1e-5)
  eps = 5e-4
  kernel = np.asarray(whitening.whitening_kernel(x, 2, eps))
  assert kernel.shape == (2, 2, 3, 24)
  filters = kernel[..., :12].reshape(12, 12)            # Column j: filter j, flattened.
  np.testing.assert_allclose(kernel[..., 12:], -kernel[..., :12])
  eigenvalues = np.linalg.eigvalsh(cov)[::-1]
  for j in range(12):
    v = filters[:, j] * np.sqrt(eigenvalues[j] + eps)  # Unit length, and an eigenvector:
    np.testing.assert_allclose(np.linalg.norm(v), 1.0, rtol=1e-4)
    np.testing.assert_allclose(cov @ v, eigenvalues[j] * v, atol=1e-4)
  # So the first half of the conv's output has (nearly) the identity as second moment.
  y = np.asarray(jax.lax.conv_general_dilated(x, kernel, (1, 1), 'VALID',
                                               dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  y = y[..., :12].reshape(-1, 12)
  np.testing.assert_allclose(y.T @ y / len(y), np.diag(eigenvalues / (eigenvalues + eps)),
                             atol=1e-3)


def test_the_whitening_kernel_never_moves_and_its_bias_stops_after_its_epochs():
  c = plain_config.get_config('airbench,smoke')
  c.optimizer.freeze_after_epochs = 1.0
  model = steps.model_for(c)
  spe = 4
  tx = optim.make_optimizer(c, optim.make_schedule(c, spe, 12), spe)
  images = jnp.asarray(_correlated_images(16, 32))
  state = steps.create_train_state(model, tx, (32, 32, 3), 0, images, fit=plain.whitening_data_fit,
                                   lookahead=False)
  kernel0 = np.asarray(state.params['whiten']['kernel'])
  assert np.abs(kernel0).sum() > 0  # Fitted, not the zeros it was initialised with.
  labels = jnp.arange(16) % 10
  step = jax.jit(lambda s: steps.train_step(s, images, labels, dropout_key=jax.random.key(0),
                                            num_classes=10)[0])
  biases = []
  for _ in range(8):
    state = step(state)
    biases.append(np.asarray(state.params['whiten']['bias']))
  np.testing.assert_array_equal(state.params['whiten']['kernel'], kernel0)
  assert not np.array_equal(biases[0], biases[3])      # Trained in the first epoch (4 steps),
  np.testing.assert_array_equal(biases[3], biases[7])  # then frozen.


# ----------------------------------------------------------------------------- optimizer groups

def test_bn_bias_multiplier_is_a_larger_rate_at_the_same_decay():
  """SGD with the multiplier k on BatchNorm biases moves them as SGD at k times the rate
  with decay/k would (airbench's parameter groups); kernels are untouched by it."""
  c = common.get_base_config()
  c.optimizer.weight_decay, c.optimizer.decay_all, c.optimizer.momentum = 0.01, True, 0.85
  params = {'conv': {'kernel': jnp.ones((3, 3, 2, 4))}, 'bn': {'bias': jnp.full((4,), 0.5)}}
  grads = jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), params)
  lr, k = 0.2, 64.0

  def run(tx, steps=3):
    p, s = params, tx.init(params)
    for _ in range(steps):
      u, s = tx.update(grads, s, p)
      p = optax.apply_updates(p, u)
    return p

  c.optimizer.bn_bias_lr_multiplier = k
  ours = run(optim.make_optimizer(c, optax.constant_schedule(lr)))
  bias_ref = run(optax.chain(optax.add_decayed_weights(0.01 / k),
                             optax.sgd(lr * k, momentum=0.85, nesterov=True)))
  kernel_ref = run(optax.chain(optax.add_decayed_weights(0.01),
                               optax.sgd(lr, momentum=0.85, nesterov=True)))
  np.testing.assert_allclose(ours['bn']['bias'], bias_ref['bn']['bias'], rtol=1e-5)
  np.testing.assert_allclose(ours['conv']['kernel'], kernel_ref['conv']['kernel'], rtol=1e-6)


def test_weight_decay_reaches_biases_only_with_decay_all():
  c = common.get_base_config()
  params = {'dense': {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones((2,))}}
  zero = jax.tree.map(jnp.zeros_like, params)
  for decay_all, bias_moves in ((False, False), (True, True)):
    c.optimizer.decay_all = decay_all
    tx = optim.make_optimizer(c, optax.constant_schedule(0.1))
    u, _ = tx.update(zero, tx.init(params), params)
    assert bool(jnp.any(u['dense']['bias'] != 0)) == bias_moves
    assert bool(jnp.all(u['dense']['kernel'] != 0))


def test_triangle_schedule():
  c = common.fast(common.get_base_config())
  spe, total = 10, 99
  sched = optim.make_schedule(c, spe, total)
  warmup = int(round(0.23 * 9.9 * spe))
  np.testing.assert_allclose(sched(0), 0.2 * 1.5, rtol=1e-6)
  np.testing.assert_allclose(sched(warmup), 1.5, rtol=1e-6)
  np.testing.assert_allclose(sched(total), 0.07 * 1.5, rtol=1e-6)
  assert sched(warmup // 2) < sched(warmup) and sched(warmup + 10) < sched(warmup)


# ----------------------------------------------------------------------------- lookahead

class _Tiny(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Dense(3, name='dense')(x.reshape(x.shape[0], -1))
    return nn.BatchNorm(use_running_average=not train, momentum=0.5, name='bn')(x)


def test_lookahead_matches_a_reference_computed_by_hand():
  """airbench's rule, written out in numpy: every `every` steps the average moves towards
  the weights (and BatchNorm statistics) by 1 - decay**every * (step/total)**3 and the
  weights become the average; after the last step they are the average."""
  every, decay, total = 2, 0.9, 5
  model, tx = _Tiny(), optax.sgd(0.3, momentum=0.5)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 2, 2, 1)), jnp.float32)
  labels = jnp.arange(8) % 3
  state = steps.create_train_state(model, tx, (2, 2, 1), 0, lookahead=True)
  plain_state = steps.create_train_state(model, tx, (2, 2, 1), 0)
  la = dict(every=every, decay=decay, total_steps=total)
  kw = dict(dropout_key=jax.random.key(0), num_classes=3)
  ema = jax.tree.map(np.asarray, steps.variables_of(plain_state))
  for step in range(1, total + 1):
    # The reference: a plain step from the same weights, then the rule by hand.
    plain_state = plain_state.replace(params=state.params, batch_stats=state.batch_stats,
                                      opt_state=state.opt_state)
    plain_state, _ = steps.train_step(plain_state, x, labels, **kw)
    current = jax.tree.map(np.asarray, steps.variables_of(plain_state))
    if step % every == 0:
      a = decay ** every * (step / total) ** 3
      ema = jax.tree.map(lambda e, p: e + (1 - a) * (p - e), ema, current)
    expected = ema if step % every == 0 or step == total else current
    state, _ = steps.train_step(state, x, labels, lookahead=la, **kw)
    chex.assert_trees_all_close(steps.variables_of(state), expected, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(state.ema, ema, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- augmentation

def _ids_dataset(n_train=64):
  rng = np.random.default_rng(0)
  return Dataset('ids', rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
                 np.arange(n_train, dtype=np.int32),
                 rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
                 np.arange(8, dtype=np.int32), 10, [])


def _flipped_per_epoch(p, ds, epoch):
  """Which example (by id) was mirrored in `epoch`, read back from the batches."""
  flipped = {}
  for s in range(p.steps_per_epoch):
    x, y = p.train_batch(epoch, s)
    x = 255 * (np.asarray(x) * p.transform.arrays['std'] + p.transform.arrays['mean'])
    for image, i in zip(x, np.asarray(y)):
      original = ds.train_images[i].astype(np.float32)
      mirrored = np.allclose(image, original[:, ::-1], atol=1e-2)
      assert mirrored or np.allclose(image, original, atol=1e-2)
      flipped[int(i)] = mirrored
  return flipped


@pytest.mark.parametrize('name', ['nin', 'plain'])
def test_recomputed_batch_stats_make_evaluation_match_training_on_that_batch(name):
  """With BatchNorm's statistics recomputed from one batch, the eval-mode network is the
  train-mode network on that batch: every layer normalises with that batch's statistics."""
  module = {'nin': nin_config, 'googlenet': googlenet_config, 'plain': plain_config}[name]
  config = module.get_config('fast,smoke')
  config.bn_stats_batches = 1
  mesh = distributed.make_mesh()
  model = steps.model_for(config)
  shape = (config.dataset.image_size, config.dataset.image_size, 3)
  state = steps.create_train_state(model, optax.sgd(0.1), shape, 0)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(8, *shape)), jnp.float32)
  train_logits, _ = model.apply(steps.variables_of(state), x, train=True, mutable=['batch_stats'])
  before = model.apply(steps.variables_of(state), x, train=False)
  assert np.abs(before - train_logits).max() > 1e-2  # The initial averages are not this batch.
  stats_fn = steps.compile_batch_stats(config, mesh)
  after = passes.recompute_batch_stats(stats_fn, state, [x])
  chex.assert_trees_all_close(after.params, state.params)  # Only the statistics change.
  np.testing.assert_allclose(model.apply(steps.variables_of(after), x, train=False),
                             train_logits, atol=2e-4)
  # Two batches: the mean of their statistics.
  y = x[::-1] * 2.0 + 1.0
  both = passes.recompute_batch_stats(stats_fn, state, [x, y])
  one_y = passes.recompute_batch_stats(stats_fn, state, [y])
  chex.assert_trees_all_close(
      both.batch_stats, jax.tree.map(lambda a, b: (a + b) / 2, after.batch_stats,
                                     one_y.batch_stats), rtol=1e-5, atol=1e-6)
  config.bn_stats_batches = 0
  assert steps.compile_batch_stats(config, mesh) is None


def test_alternating_flips_mirror_each_image_once_every_two_epochs():
  ds = _ids_dataset()
  p = pipeline.Pipeline(ds, distributed.make_mesh(), 16, 8, seed=0, crop_padding=0,
                        alternate_flips=True)
  epochs = [_flipped_per_epoch(p, ds, e) for e in range(4)]
  for i in range(64):
    assert epochs[0][i] != epochs[1][i] and epochs[1][i] != epochs[2][i]
    assert epochs[0][i] == epochs[2][i] and epochs[1][i] == epochs[3][i]
  assert 10 < sum(epochs[0].values()) < 54  # A random half starts mirrored.
  # A pure function of (seed, epoch, step): a resumed run sees the same batches.
  again = pipeline.Pipeline(ds, distributed.make_mesh(), 16, 8, seed=0, crop_padding=0,
                            alternate_flips=True)
  np.testing.assert_array_equal(p.train_batch(3, 1)[0], again.train_batch(3, 1)[0])


def test_reflect_padding_translates_without_black_borders():
  ds = _ids_dataset()
  p = pipeline.Pipeline(ds, distributed.make_mesh(), 16, 8, seed=0, crop_padding=2, flip=False,
                        pad_mode='reflect')
  shifted = 0
  for s in range(p.steps_per_epoch):
    x, y = p.train_batch(0, s)
    x = 255 * (np.asarray(x) * p.transform.arrays['std'] + p.transform.arrays['mean'])
    for image, i in zip(x, np.asarray(y)):
      padded = np.pad(ds.train_images[i].astype(np.float32), ((2, 2), (2, 2), (0, 0)), 'reflect')
      offsets = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.allclose(padded[dy:dy + 32, dx:dx + 32], image, atol=1e-2)]
      assert offsets, 'every image is a crop of its reflect-padded original'
      shifted += offsets[0] != (2, 2)
  assert shifted > 32


def test_tta_averages_exactly_its_views():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(6 * 6 * 3, 4)), jnp.float32)
  apply = lambda v: v.reshape(v.shape[0], -1) @ w   # Not mirror- or shift-invariant.
  np.testing.assert_allclose(steps.tta_logits(apply, x, 0), apply(x))
  mirror = lambda v: 0.5 * (apply(v) + apply(v[:, :, ::-1]))
  np.testing.assert_allclose(steps.tta_logits(apply, x, 1), mirror(x), rtol=1e-5)
  xp = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)), 'reflect')
  up_left, down_right = jnp.asarray(xp[:, 0:6, 0:6]), jnp.asarray(xp[:, 2:8, 2:8])
  expected = 0.5 * mirror(x) + 0.25 * (mirror(up_left) + mirror(down_right))
  np.testing.assert_allclose(steps.tta_logits(apply, x, 2), expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the net

def test_airbench_shapes_sizes_and_identity_init():
  c = plain_config.get_config('airbench')
  model = registry.build_model(c.model)
  rows = summary.summarize(model)
  t = summary.totals(rows)
  # 2x2x3x24 (+24) whitening, 3x3 convs 24->64->64, 64->256->256, 256->256->256,
  # 6 BatchNorm biases, a 256x10 head.
  convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 256 * 256 + 256 * 256)
  assert t['params'] == 2 * 2 * 3 * 24 + 24 + convs + 2 * (64 + 256 + 256) + 256 * 10
  by_name = {r.name: r for r in rows}
  assert by_name['whiten'].output_shape == (31, 31, 24)
  assert by_name['group1_conv1'].output_shape == (31, 31, 64)
  assert by_name['group3_conv2'].output_shape == (3, 3, 256)
  kernel = plain.dirac_init(jax.random.key(0), (3, 3, 64, 64))
  x = jax.random.normal(jax.random.key(1), (1, 5, 5, 64))
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(y, x, atol=1e-6)  # A square conv starts as the identity.


def test_an_airbench_run_whitens_with_its_training_images_and_counts_its_flops(tmp_path):
  c = plain_config.get_config('airbench,smoke')
  final = train.train_and_evaluate(c, str(tmp_path), handle_signals=False)
  # The (frozen) whitening filters are those of its first training images as the model
  # sees them; validation images would give other filters.
  kernel = evaluate.load_run(str(tmp_path)).state.params['whiten']['kernel']
  ds = data.load(c.dataset)
  pipe = pipeline.Pipeline(ds, distributed.make_mesh(), 32, 20, 0, crop_padding=0, flip=False)
  fit = lambda images: np.asarray(whitening.whitening_kernel(pipe.preprocessed(images), 2))
  # Up to the summation order of the patch covariance (jitted in the run, eager here),
  # which moves an eigenvector of a near-double eigenvalue by about 1e-4.
  np.testing.assert_allclose(kernel, fit(ds.train_images[:registry.DATA_FIT_EXAMPLES]),
                             rtol=1e-3, atol=1e-3)
  assert not np.allclose(kernel, fit(ds.val_images), atol=1e-2)
  # Training FLOPs: the summary's multiply-adds x 6 x images seen.
  macs = summary.totals(summary.summarize(steps.model_for(c)))['macs']
  assert final['flops_per_image'] == 6 * macs
  assert final['train_flops'] == 6 * macs * c.batch_size * final['step']
  (record,) = [r for r in runs.records(str(tmp_path), drop_timing=False) if r['kind'] == 'eval']
  assert record['train_flops'] == 6 * macs * c.batch_size * record['step']
  assert record['train_time_sec'] > 0
  assert final['tta'] == 2 and 0 <= final['test_accuracy_tta'] <= 1
  assert final['optimizer_flops_per_step'] == 0  # SGD: no Newton-Schulz.


def test_a_muon_run_counts_its_newton_schulz_flops(tmp_path):
  c = plain_config.get_config('airbench_muon,smoke')
  final = train.train_and_evaluate(c, str(tmp_path), handle_signals=False)
  macs = summary.totals(summary.summarize(steps.model_for(c)))['macs']
  params = evaluate.load_run(str(tmp_path)).state.params
  ns = optim.newton_schulz_flops(c, params)
  assert ns > 0 and final['optimizer_flops_per_step'] == ns
  assert final['flops_per_image'] == 6 * macs  # The model's alone.
  assert final['train_flops'] == (6 * macs * c.batch_size + ns) * final['step']


def test_time_to_accuracy_names_the_first_crossing():
  evals = [{'step': s, 'epoch': s / 10, 'val_accuracy': a, 'train_flops': 1e9 * s,
            'train_time_sec': 2.0 * s} for s, a in ((10, 0.55), (20, 0.71), (30, 0.69), (40, 0.86))]
  reached = loop.time_to_accuracy(evals)
  assert reached['0.5']['step'] == 10 and reached['0.7']['step'] == 20
  assert reached['0.85'] == {'step': 40, 'epoch': 4.0, 'train_flops': 4e10, 'train_time_sec': 80.0}
  assert '0.9' not in reached


@pytest.mark.parametrize('config', ['configs/plain.py:airbench,smoke', 'configs/nin.py:fast,smoke',
                                    'configs/googlenet.py:fast,smoke',
                                    'configs/plain.py:fast,smoke',
                                    'configs/plain.py:airbench_muon,smoke',
                                    'configs/nin.py:fast,muon,smoke'])
def test_fast_configs_train(config, tmp_path):
  p = runs.cli('train.py', f'--config={config}', f'--workdir={tmp_path}', '--config.num_train_steps=3')
  assert p.returncode == 0, p.stderr[-2000:]
  final = runs.final(str(tmp_path))
  assert final['step'] == 3 and final['tta'] == 2 and np.isfinite(final['test_loss_tta'])


def test_fast_is_one_recipe_for_every_family():
  configs = [m.get_config('fast') for m in (nin_config, googlenet_config, plain_config)]
  configs.append(plain_config.get_config('airbench'))
  # airbench's own: its whitening's freezing, and its BatchNorm biases' 64x rate.
  freezing = ('frozen', 'freeze_after', 'freeze_after_epochs', 'bn_bias_lr_multiplier')
  recipe = lambda c: (c.batch_size, c.num_epochs, c.label_smoothing, c.tta, c.dataset.to_dict(),
                      c.schedule.to_dict(),
                      {k: v for k, v in c.optimizer.to_dict().items() if k not in freezing})
  first = recipe(configs[0])
  for c in configs[1:]:
    assert recipe(c) == first
  for c in configs:  # Regularisation is the protocol's: no dropout in any family.
    assert c.model.get('dropout_rate', 0.0) == 0.0 and c.model.get('head_dropout_rate', 0.0) == 0.0
  with pytest.raises(ValueError, match='fast does not combine with paper'):
    nin_config.get_config('fast,paper')


def test_airbench_learns_the_digits(tmp_path):
  c = plain_config.get_config('airbench,digits')
  # Half its schedule, in half the time: best validation 0.947 (0.990 over its 10 epochs).
  c.num_epochs = 5.0
  final = train.train_and_evaluate(c, str(tmp_path), handle_signals=False)
  assert final['best_val_accuracy'] > 0.8, final
