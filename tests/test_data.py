"""Datasets: the real TFDS CIFAR-10 builder offline, digits, and clear errors."""
import numpy as np
import pytest

import cifar_fixture
from configs import common
from nin import data


def _cfg(**kw):
  c = common.get_base_config().dataset
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


def test_hosts_get_disjoint_equal_shards(cifar_dirs):
  data_dir = cifar_dirs[0]
  shards = [data.load(_cfg(data_dir=data_dir, num_train=199), i, 2) for i in range(2)]
  assert len(shards[0].train_labels) == len(shards[1].train_labels) == 99
  assert shards[0].num_test_examples == 50
  assert len(shards[0].test_labels) + len(shards[1].test_labels) == 50


def test_no_network_and_no_data_says_how_to_provide_it(tmp_path, monkeypatch):
  monkeypatch.setattr(data, '_reachable', lambda url: False)
  with pytest.raises(data.DataError) as e:
    data.load(_cfg(data_dir=str(tmp_path)))
  msg = str(e.value)
  assert '\n' not in msg and 'cifar10 is not prepared in ' + str(tmp_path) in msg
  for hint in ('internet', 'data_dir', 'manual_dir', 'cifar-10-binary.tar.gz'):
    assert hint in msg


def test_manual_dir_without_the_tarball(tmp_path):
  with pytest.raises(data.DataError, match='cifar-10-binary.tar.gz not found in manual_dir'):
    data.load(_cfg(data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path)))


def test_truncated_tarball_is_reported_as_corrupt(tmp_path, monkeypatch):
  train, test = cifar_fixture.make_arrays(4, 5)
  path = cifar_fixture.write_tarball(str(tmp_path / 'manual'), train, test)
  cifar_fixture.register_fake_checksum(monkeypatch, path)  # The intact file's checksum.
  with open(path, 'rb') as f:
    content = f.read()
  with open(path, 'wb') as f:
    f.write(content[:len(content) // 2])
  with pytest.raises(data.DataError, match='corrupt or truncated'):
    data.load(_cfg(data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path / 'manual')))
  assert not (tmp_path / 'tfds' / 'cifar10' / '3.0.2' / 'dataset_info.json').exists()


def test_unknown_dataset_lists_the_valid_ones():
  with pytest.raises(data.DataError, match=r"'imagenet'.*cifar10, cifar100, digits, synthetic"):
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
