"""The NiN paper's preprocessing: GCN + ZCA from the training examples only, on the device."""
import os

import numpy as np
import pytest

import runs
from nin import data
from nin.data import preprocess
from nin.train import run_config
from nin import workdir as workdir_lib


def _correlated_images(n, size=8, seed=0):
  """Images whose pixels are strongly correlated, as natural images are."""
  rng = np.random.default_rng(seed)
  smooth = rng.normal(size=(n, size // 4, size // 4, 3)).repeat(4, 1).repeat(4, 2)
  x = 128 + 40 * smooth + 20 * rng.normal(size=(n, size, size, 3))
  return np.clip(x, 0, 255).astype(np.uint8)


def test_whitened_training_images_have_identity_covariance():
  images = _correlated_images(4000)
  t = preprocess.fit('gcn_zca', images, zca_epsilon=1e-6)
  flat = np.asarray(t(images), np.float64).reshape(len(images), -1)
  d = flat.shape[1]
  raw = images.reshape(len(images), -1).astype(np.float64)
  assert np.abs(np.corrcoef(raw.T) - np.eye(d)).max() > 0.5  # Correlated before...
  # ...and white after, on the space GCN'd images span (each sums to zero).
  expected = np.eye(d) - np.ones((d, d)) / d
  np.testing.assert_allclose(np.cov(flat.T, bias=True), expected, atol=2e-3)
  np.testing.assert_allclose(flat.mean(0), 0, atol=1e-4)
  # The paper's epsilon (0.1) shrinks only the weakest directions.
  t01 = preprocess.fit('gcn_zca', images)
  var = np.linalg.eigvalsh(np.cov(np.asarray(t01(images), np.float64).reshape(len(images), -1).T))
  assert var.max() < 1.0 + 1e-3 and np.median(var) > 0.5


def test_standardize_and_a_saved_transform_round_trip(tmp_path):
  images = _correlated_images(300)
  for kind in preprocess.PREPROCESS:
    t = preprocess.fit(kind, images)
    t.save(str(tmp_path / f'{kind}.npz'))
    loaded = preprocess.Transform.load(str(tmp_path / f'{kind}.npz'))
    assert loaded.kind == kind
    np.testing.assert_array_equal(np.asarray(loaded(images[:5])), np.asarray(t(images[:5])))
  x = np.asarray(preprocess.fit('standardize', images)(images), np.float64)
  np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(x.reshape(-1, 3).std(0), 1, atol=1e-3)
  with pytest.raises(ValueError, match="Unknown dataset.preprocess 'pca'; valid: standardize, gcn_zca"):
    preprocess.fit('pca', images)


GCN_ARGS = ('--config', 'configs/nin.py:smoke', '--config.dataset.preprocess=gcn_zca',
            '--config.num_epochs=2', '--config.log_every_steps=1',
            '--config.dataset.image_size=16')  # ZCA's eigendecomposition: 768 dims, not 3072.


def test_a_gcn_zca_run_saves_statistics_of_its_training_examples_only(tmp_path):
  workdir = str(tmp_path / 'run')
  runs.cli('train.py', *GCN_ARGS, '--workdir', workdir, check=True)
  saved = preprocess.Transform.load(os.path.join(workdir, workdir_lib.PREPROCESS_FILE))
  config = run_config.load(workdir)
  ds = data.load(config.dataset)
  assert ds.has_validation and len(ds.train_images) == 256
  refit = preprocess.fit('gcn_zca', ds.train_images)
  np.testing.assert_allclose(saved.arrays['zca'], refit.arrays['zca'], atol=1e-5)
  # With the validation or test images in the statistics, they would differ.
  for other in (ds.val_images, ds.test_images):
    mixed = preprocess.fit('gcn_zca', np.concatenate([ds.train_images, other]))
    assert np.abs(mixed.arrays['mean'] - saved.arrays['mean']).max() > 1e-3
  # eval.py applies the saved transform: it reproduces training's final test figures.
  p = runs.cli('eval.py', '--workdir', workdir, check=True)
  final = runs.final(workdir)
  assert f"{final['test_accuracy']:.4f}" in p.stdout


def test_gcn_zca_batches_are_the_same_on_four_devices_and_after_resume(tmp_path):
  one, four, resumed = (str(tmp_path / n) for n in ('one', 'four', 'resumed'))
  runs.cli('train.py', *GCN_ARGS, '--workdir', one, check=True)
  runs.cli('train.py', *GCN_ARGS, '--workdir', four, devices=4, check=True)
  runs.cli('train.py', *GCN_ARGS, '--workdir', resumed, '--config.stop_after_steps=5', check=True)
  runs.cli('train.py', *GCN_ARGS, '--workdir', resumed, '--allow_config_change', check=True)
  loss = lambda w: [r['loss'] for r in runs.records(w) if r['kind'] == 'train']
  assert len(loss(one)) == 16
  # The same batches: the first steps agree to rounding; later ones drift apart by the
  # different summation order of four devices' reductions, as any two float runs would.
  np.testing.assert_allclose(loss(four)[:8], loss(one)[:8], rtol=2e-4)
  np.testing.assert_allclose(loss(four), loss(one), rtol=5e-3)
  assert loss(resumed) == loss(one)
