"""On-device batches: augmentation really happens, determinism, complete evaluation."""
import os
import subprocess
import sys

import numpy as np
import pytest

from nin.runtime import distributed
from nin.data import pipeline, preprocess
from nin import data
from nin.data.datasets import Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dataset(n_train=96, n_test=37, seed=0):
  """Labels are example ids, so batches reveal which examples they hold."""
  rng = np.random.default_rng(seed)
  return Dataset('ids', rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
                 np.arange(n_train, dtype=np.int32),
                 rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
                 np.arange(n_test, dtype=np.int32), 10, [])


def _pipe(ds=None, **kw):
  args = dict(batch_size=16, eval_batch_size=8, seed=0)
  args.update(kw)
  return pipeline.Pipeline(ds or _dataset(), distributed.make_mesh(), **args)


def test_shapes_dtypes_and_normalisation():
  p = _pipe(crop_padding=0, flip=False)
  x, y = p.train_batch(0, 0)
  assert x.shape == (16, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
  assert p.steps_per_epoch == 96 // 16
  assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2


def test_an_epoch_is_a_permutation_and_epochs_differ():
  p = _pipe()
  epoch0 = np.concatenate([np.asarray(p.train_batch(0, s)[1]) for s in range(p.steps_per_epoch)])
  epoch1 = np.concatenate([np.asarray(p.train_batch(1, s)[1]) for s in range(p.steps_per_epoch)])
  assert sorted(epoch0) == list(range(96)) and sorted(epoch1) == list(range(96))
  assert not np.array_equal(epoch0, epoch1)


def test_batches_are_a_pure_function_of_seed_epoch_step():
  a, b = _pipe(), _pipe()
  for got, again in zip(a.train_batch(3, 2), b.train_batch(3, 2)):
    np.testing.assert_array_equal(got, again)
  assert not np.array_equal(a.train_batch(3, 2)[0], a.train_batch(4, 2)[0])
  assert not np.array_equal(a.train_batch(3, 2)[1], _pipe(seed=1).train_batch(3, 2)[1])


def _unnormalized(p, x):
  return np.asarray(x) * p.transform.arrays['std'] + p.transform.arrays['mean']


def test_flip_happens_for_some_examples_and_not_others():
  ds = _dataset()
  p = _pipe(ds, crop_padding=0, flip=True)
  x, ids = p.train_batch(0, 0)
  x = _unnormalized(p, x) * 255
  orig = ds.train_images[np.asarray(ids)].astype(np.float32)
  same = [np.allclose(x[i], orig[i], atol=1e-2) for i in range(16)]
  flipped = [np.allclose(x[i], orig[i][:, ::-1], atol=1e-2) for i in range(16)]
  assert all(s or f for s, f in zip(same, flipped))
  assert 0 < sum(flipped) < 16


def test_crop_is_a_shifted_window_of_the_zero_padded_image():
  ds = _dataset()
  p = _pipe(ds, crop_padding=4, flip=False)
  x, ids = p.train_batch(0, 1)
  x = np.round(_unnormalized(p, x) * 255)
  shifted = 0
  for i, idx in enumerate(np.asarray(ids)):
    padded = np.pad(ds.train_images[idx], ((4, 4), (4, 4), (0, 0))).astype(np.float32)
    offsets = [(dy, dx) for dy in range(9) for dx in range(9)
               if np.allclose(padded[dy:dy + 32, dx:dx + 32], x[i], atol=1)]
    assert offsets, f'example {i} is no crop of its image'
    shifted += offsets[0] != (4, 4)
  assert shifted > 8


def test_cutout_zeroes_a_square():
  ds = _dataset()
  p = _pipe(ds, crop_padding=0, flip=False, cutout=8)
  x, _ = p.train_batch(0, 0)
  x = np.round(_unnormalized(p, x) * 255)
  zero_pixels = (x == 0).all(-1).sum((1, 2))
  assert (zero_pixels >= 16).all()


def test_eval_covers_every_test_example_once_unaugmented():
  ds = _dataset()
  p = _pipe(ds, cutout=8)
  seen = []
  for x, ids, mask in p.eval_batches():
    x = np.round(_unnormalized(p, x) * 255)
    ids, mask = np.asarray(ids), np.asarray(mask)
    np.testing.assert_allclose(x[mask], ds.test_images[ids[mask]], atol=1)
    seen += list(ids[mask])
  assert sorted(seen) == list(range(37)) and p.eval_steps('test') == 5
  assert p.splits == ('test',)
  with pytest.raises(ValueError, match="No 'validation' split"):
    next(p.eval_batches('validation'))


def _with_validation(n_val=20):
  return data.hold_out(_dataset(), n_val)  # Labels are ids: the held-out ids are known.


def test_validation_is_evaluated_whole_and_never_trained_on():
  ds = _with_validation()
  held = set(data.validation_indices(np.arange(96), 20))
  assert set(ds.val_labels) == held
  p = _pipe(ds)
  assert p.splits == ('test', 'validation') and p.steps_per_epoch == 76 // 16
  seen = []
  for x, ids, mask in p.eval_batches('validation'):
    seen += list(np.asarray(ids)[np.asarray(mask)])
  assert sorted(seen) == sorted(held)
  trained = {int(i) for e in range(3) for s in range(p.steps_per_epoch)
             for i in np.asarray(p.train_batch(e, s)[1])}
  assert not trained & held and trained <= set(range(96)) - held
  # Normalisation statistics come from the training examples alone.
  mean = preprocess.fit('standardize', ds.train_images).arrays['mean']
  np.testing.assert_allclose(p.transform.arrays['mean'], mean)
  assert not np.allclose(mean, preprocess.fit('standardize', _dataset().train_images).arrays['mean'])


def test_bad_batch_sizes_are_rejected():
  with pytest.raises(ValueError, match='batch_size=0 must be a positive multiple'):
    _pipe(batch_size=0)
  with pytest.raises(ValueError, match='larger than the training set'):
    _pipe(batch_size=128)


_SCRIPT = """
import sys, numpy as np, jax
sys.path.insert(0, {tests!r})
from test_pipeline import _pipe, _with_validation
p = _pipe(_with_validation())
assert jax.device_count() == {n}
x, y = p.train_batch(2, 3)
batches = [np.asarray(b) for b in next(iter(p.eval_batches()))]
val = [np.asarray(b) for b in next(iter(p.eval_batches('validation')))]
np.savez({out!r}, x=np.asarray(x), y=np.asarray(y), ex=batches[0], ey=batches[1], em=batches[2],
         vx=val[0], vy=val[1], vm=val[2])
"""


def test_four_devices_draw_exactly_the_single_device_batches(tmp_path):
  results = []
  for n in (1, 4):
    out = str(tmp_path / f'{n}.npz')
    env = dict(os.environ, JAX_PLATFORMS='cpu',
               XLA_FLAGS=f'--xla_force_host_platform_device_count={n}')
    code = _SCRIPT.format(tests=os.path.join(ROOT, 'tests'), n=n, out=out)
    subprocess.run([sys.executable, '-c', code], env=env, check=True, cwd=ROOT)
    results.append(np.load(out))
  for k in ('x', 'y', 'ex', 'ey', 'em', 'vx', 'vy', 'vm'):
    np.testing.assert_array_equal(results[0][k], results[1][k])
