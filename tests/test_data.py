"""Datasets: the real TFDS CIFAR-10 builder offline, digits, and clear errors."""
import os
import shutil

import numpy as np
import pytest

import cifar_fixture
from configs import common
from nin import data, errors
from nin.data import datasets


def _cfg(**kw):
  c = common.get_base_config().dataset
  c.validation_examples = 0  # The fixtures are small; tests of the split set it.
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def test_prepared_cifar_equals_the_tarball_exactly(cifar_dirs):
  data_dir, _, (xtr, ytr), (xte, yte) = cifar_dirs
  ds = data.load(_cfg(data_dir=data_dir))  # Prepared: no manual_dir, no TensorFlow needed.
  np.testing.assert_array_equal(ds.train_images, xtr)
  np.testing.assert_array_equal(ds.train_labels, ytr)
  np.testing.assert_array_equal(ds.test_images, xte)
  np.testing.assert_array_equal(ds.test_labels, yte)
  assert ds.class_names == cifar_fixture.CLASS_NAMES and ds.num_classes == 10
  assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int32


def test_validation_is_held_out_of_training_disjoint_balanced_and_fixed(cifar_dirs):
  data_dir, _, (xtr, ytr), _ = cifar_dirs
  ds = data.load(_cfg(data_dir=data_dir, validation_examples=50))
  assert len(ds.val_labels) == 50 and len(ds.train_labels) == 150
  held = data.validation_indices(ytr, 50)
  np.testing.assert_array_equal(ds.val_images, xtr[held])
  np.testing.assert_array_equal(ds.val_labels, ytr[held])
  rest = np.setdiff1d(np.arange(200), held)
  np.testing.assert_array_equal(ds.train_images, xtr[rest])  # Training keeps its order.
  # Disjoint: no validation image is a training image (the fixture's images are distinct).
  train_rows = {img.tobytes() for img in ds.train_images}
  assert not any(img.tobytes() in train_rows for img in ds.val_images)
  again = data.load(_cfg(data_dir=data_dir, validation_examples=50, num_train=30))
  np.testing.assert_array_equal(again.val_labels, ds.val_labels)  # num_train does not move it.
  assert len(again.train_labels) == 30


def test_validation_indices_are_class_balanced_and_nested():
  labels = np.repeat(np.arange(10), [500 + 10 * c for c in range(10)])
  np.random.default_rng(3).shuffle(labels)
  idx = data.validation_indices(labels, 1000)
  assert len(idx) == len(set(idx)) == 1000
  np.testing.assert_array_equal(np.bincount(labels[idx], minlength=10), [100] * 10)
  assert set(data.validation_indices(labels, 300)) <= set(idx)
  np.testing.assert_array_equal(idx, data.validation_indices(labels.copy(), 1000))


def test_validation_examples_out_of_range_is_a_data_error(cifar_dirs):
  with pytest.raises(errors.DataError, match=r'validation_examples=200 must be in \[0, 200\)'):
    data.load(_cfg(data_dir=cifar_dirs[0], validation_examples=200))


def test_a_copy_with_another_checksum_is_refused_unless_allowed(tmp_path):
  train, test = cifar_fixture.make_arrays(4, 5)
  cifar_fixture.write_tarball(str(tmp_path / 'manual'), train, test)  # Not the official file.
  cfg = _cfg(data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path / 'manual'))
  with pytest.raises(errors.DataError, match='verify_checksum=False'):
    data.load(cfg)
  cfg.verify_checksum = False
  ds = data.load(cfg)
  np.testing.assert_array_equal(ds.train_images, train[0])
  np.testing.assert_array_equal(ds.test_labels, test[1])


def test_no_network_and_no_data_says_how_to_provide_it(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets, '_reachable', lambda url: False)
  with pytest.raises(errors.DataError) as e:
    data.load(_cfg(data_dir=str(tmp_path)))
  msg = str(e.value)
  assert '\n' not in msg and 'cifar10 is not prepared in ' + str(tmp_path) in msg
  for hint in ('internet', 'data_dir', 'manual_dir', 'cifar-10-binary.tar.gz', 'image_dir'):
    assert hint in msg


def test_manual_dir_without_the_tarball(tmp_path):
  with pytest.raises(errors.DataError, match='cifar-10-binary.tar.gz not found in manual_dir'):
    data.load(_cfg(data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path)))


def test_truncated_tarball_is_reported_as_corrupt(tmp_path, monkeypatch):
  train, test = cifar_fixture.make_arrays(4, 5)
  path = cifar_fixture.write_tarball(str(tmp_path / 'manual'), train, test)
  cifar_fixture.register_fake_checksum(monkeypatch, path)  # The intact file's checksum.
  with open(path, 'rb') as f:
    content = f.read()
  with open(path, 'wb') as f:
    f.write(content[:len(content) // 2])
  with pytest.raises(errors.DataError, match='corrupt or truncated'):
    data.load(_cfg(data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path / 'manual')))
  assert not (tmp_path / 'tfds' / 'cifar10' / '3.0.2' / 'dataset_info.json').exists()


def test_unknown_dataset_lists_the_valid_ones():
  with pytest.raises(errors.DataError, match=r"'imagenet'.*cifar10, cifar100, digits, synthetic"):
    data.load(_cfg(name='imagenet'))


def test_digits_ship_offline_as_32x32x3():
  ds = data.load(_cfg(name='digits'))
  assert ds.train_images.shape == (1497, 32, 32, 3) and ds.test_images.shape == (300, 32, 32, 3)
  assert set(np.unique(ds.test_labels)) == set(range(10))
  again = data.load(_cfg(name='digits'))
  np.testing.assert_array_equal(ds.test_images, again.test_images)  # A fixed split.
  # The 8x8 digits are upsampled, not invented: every 4x4 block is constant.
  img = ds.train_images[0, :, :, 0]
  np.testing.assert_array_equal(img, np.kron(img[::4, ::4], np.ones((4, 4), np.uint8)))


def test_synthetic_and_num_train():
  ds = data.load(_cfg(name='synthetic', synthetic_train=64, synthetic_test=10, image_size=40,
                      num_train=20))
  assert ds.train_images.shape == (20, 40, 40, 3) and len(ds.test_labels) == 10


@pytest.mark.parametrize('damage', ['dataset_info', 'array_record'])
def test_a_damaged_prepared_dataset_is_one_clear_error(cifar_dirs, tmp_path, damage):
  data_dir = str(tmp_path / 'tfds')
  shutil.copytree(cifar_dirs[0], data_dir)
  version = os.path.join(data_dir, 'cifar10', '3.0.2')
  if damage == 'dataset_info':
    with open(os.path.join(version, 'dataset_info.json'), 'w') as f:
      f.write('{"name": ')
  else:
    record = next(os.path.join(version, n) for n in sorted(os.listdir(version))
                  if 'train.array_record' in n)
    with open(record, 'r+b') as f:
      f.truncate(os.path.getsize(record) // 3)
  with pytest.raises(errors.DataError, match='cannot be read') as e:
    data.load(_cfg(data_dir=data_dir))
  assert '\n' not in str(e.value) and 'delete that folder' in str(e.value)


def test_tfds_looking_for_a_missing_prepared_copy_is_not_shown():
  """Before the one-line error above, TFDS logs that the folder it looked in has no
  dataset_info.json; the CLIs drop that line (unless --verbosity is given)."""
  import logging
  from nin import cli
  record = logging.LogRecord('absl', logging.WARNING, 'file_utils.py', 394,
                             'Variant folder %s has no dataset_info.json', ('/x/cifar10/3.0.2',),
                             None)
  assert not cli._DropNoise().filter(record)
  kept = logging.LogRecord('absl', logging.WARNING, 'x.py', 1, 'Something else', (), None)
  assert cli._DropNoise().filter(kept)


def test_a_job_that_loses_the_race_to_prepare_reads_the_winners_copy(tmp_path, monkeypatch):
  # Several jobs of a sweep prepare the dataset at once; every one but the first to
  # finish fails to rename its copy into place. Simulated here: this job's own
  # prepare writes the data (as the winner would), then fails as the losers do.
  train, test = cifar_fixture.make_arrays(4, 5)
  path = cifar_fixture.write_tarball(str(tmp_path / 'manual'), train, test)
  cifar_fixture.register_fake_checksum(monkeypatch, path)
  import tensorflow_datasets as tfds
  prepare = tfds.core.DatasetBuilder.download_and_prepare

  def lose_the_race(self, *args, **kwargs):
    prepare(self, *args, **kwargs)
    raise FileExistsError(f'Cannot rename {self.data_dir}.incomplete: it already exists')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', lose_the_race)
  cfg = _cfg(data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path / 'manual'))
  ds = data.load(cfg)
  np.testing.assert_array_equal(ds.train_images, train[0])
  np.testing.assert_array_equal(ds.test_labels, test[1])

  # Where no job's copy is in place, the failure is still reported.
  def fail(self, *args, **kwargs):
    raise FileExistsError('Cannot rename: it already exists')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', fail)
  cfg.data_dir = str(tmp_path / 'elsewhere')
  with pytest.raises(errors.DataError, match='FileExistsError'):
    data.load(cfg)
