"""Writes a small CIFAR-10 tarball in the official binary layout.

`cifar-10-batches-bin/data_batch_1..5.bin` and `test_batch.bin` hold records of
1 label byte + 3072 pixel bytes (channel-major: 1024 R, 1024 G, 1024 B), and
`batches.meta.txt` the class names, exactly as the genuine file does.
"""
import io
import os
import tarfile

import numpy as np

CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
               'ship', 'truck']
URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'


def make_arrays(n_per_batch, n_test, seed=0):
  """Returns NHWC uint8 images and labels: train (5 batches) and test."""
  rng = np.random.default_rng(seed)
  def split(n):
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, (n,)).astype(np.int32))
  return split(5 * n_per_batch), split(n_test)


def _records(images, labels):
  chw = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
  return np.concatenate([labels.astype(np.uint8)[:, None], chw], axis=1).tobytes()


def write_tarball(folder, train, test):
  """Writes folder/cifar-10-binary.tar.gz; returns its path."""
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, 'cifar-10-binary.tar.gz')
  (xtr, ytr), (xte, yte) = train, test
  files = {f'data_batch_{i + 1}.bin': _records(x, y) for i, (x, y) in
           enumerate(zip(np.array_split(xtr, 5), np.array_split(ytr, 5)))}
  files['test_batch.bin'] = _records(xte, yte)
  files['batches.meta.txt'] = ('\n'.join(CLASS_NAMES) + '\n\n').encode()
  with tarfile.open(path, 'w:gz') as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(f'cifar-10-batches-bin/{name}')
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def register_fake_checksum(monkeypatch, path):
  """In tests only: make TFDS expect this file's checksum instead of the genuine one's."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.download import checksums
  info = checksums.compute_url_info(path)
  info = checksums.UrlInfo(size=info.size, checksum=info.checksum, filename=os.path.basename(path))
  monkeypatch.setattr(tfds.image_classification.Cifar10, 'url_infos', {URL: info})
