"""Datasets as uint8 arrays in host memory: CIFAR-10/100 (TFDS or a folder of images),
digits, synthetic.

CIFAR is small (50k x 32x32x3 bytes = 150 MB), so each split is read once
into memory and handed to `nin.data.pipeline`, which keeps it on the accelerator and
does shuffling and augmentation there: no input pipeline runs during training.

CIFAR comes through the real TFDS builders. They download on a connected
machine; offline, `data_dir` can point at an existing TFDS data dir, or
`manual_dir` at a folder holding the official `cifar-10-binary.tar.gz`
(`cifar-100-binary.tar.gz`). Preparing once needs TensorFlow (the builders
encode images with it); reading a prepared dataset does not: it goes through
`tfds.data_source` (array_record files, PNGs decoded with Pillow).
CIFAR-10 can also come from a folder of image files (`image_dir`:
nin/data/image_folder.py), which needs neither TensorFlow nor TFDS.
"""
import concurrent.futures
import dataclasses
import os
import socket
import sys
import urllib.parse
from typing import Optional

import numpy as np

from nin.errors import DataError  # noqa: F401  (raised here; data.DataError is its name too)

DATASETS = ('cifar10', 'cifar100', 'digits', 'synthetic')
_URLS = {'cifar10': 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
         'cifar100': 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz'}
_TARBALLS = {'cifar10': 'cifar-10-binary.tar.gz', 'cifar100': 'cifar-100-binary.tar.gz'}
# CIFAR-10's classes in its label order (the TFDS builder's, the binary files').
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
                   'ship', 'truck')


SPLITS = ('train', 'validation', 'test')
_VALIDATION_SEED = 0  # Fixed: every seed and every run of a dataset holds out the same examples.


@dataclasses.dataclass
class Dataset:
  name: str
  train_images: np.ndarray  # (N, H, W, 3) uint8
  train_labels: np.ndarray  # (N,) int32
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  class_names: list
  val_images: Optional[np.ndarray] = None  # Held out of the training split; None: no validation.
  val_labels: Optional[np.ndarray] = None

  @property
  def image_shape(self):
    return self.train_images.shape[1:]

  @property
  def has_validation(self) -> bool:
    return self.val_labels is not None and len(self.val_labels) > 0

  def split(self, name: str):
    """(images, labels) of 'train', 'validation' or 'test'."""
    prefix = {'train': 'train', 'validation': 'val', 'test': 'test'}.get(name)
    if prefix is None:
      raise ValueError(f'Unknown split {name!r}; valid: {", ".join(SPLITS)}')
    return getattr(self, f'{prefix}_images'), getattr(self, f'{prefix}_labels')


def validation_indices(labels: np.ndarray, n: int) -> np.ndarray:
  """The `n` training examples held out for validation, sorted.

  Stratified and fixed: each class's examples are shuffled with one fixed seed
  and the classes are taken in turn, so the validation set is class-balanced,
  the same for every run and seed, and a larger `n` extends a smaller one.
  """
  order = np.random.default_rng(_VALIDATION_SEED).permutation(len(labels))
  ranks = np.empty(len(labels), np.int64)  # Position of each example within its class.
  for c in np.unique(labels):
    members = order[labels[order] == c]
    ranks[members] = np.arange(len(members))
  round_robin = np.lexsort((labels[order], ranks[order]))  # By rank, then class.
  return np.sort(order[round_robin][:n])


def hold_out(ds: Dataset, n: int) -> Dataset:
  """Moves `n` training examples (`validation_indices`) into the validation split."""
  held = np.zeros(len(ds.train_labels), bool)
  held[validation_indices(ds.train_labels, n)] = True
  ds.val_images, ds.val_labels = ds.train_images[held], ds.train_labels[held]
  ds.train_images, ds.train_labels = ds.train_images[~held], ds.train_labels[~held]
  return ds


def load(config) -> Dataset:
  """Loads `config.name`, holding out `config.validation_examples` of the training split.

  Every host loads every split whole (CIFAR is 150 MB): batches are then drawn
  by global position (nin.data.pipeline), so hosts x devices never changes them.
  """
  if config.name not in DATASETS:
    raise DataError(f'Unknown dataset {config.name!r}; valid: {", ".join(DATASETS)}')
  if config.name == 'digits':
    ds = _digits()
  elif config.name == 'synthetic':
    ds = synthetic(config.synthetic_train, config.synthetic_test, config.image_size,
                   config.synthetic_classes)
  elif config.image_dir:
    ds = _image_folder(config.name, config.image_dir, config.image_size)
  else:
    ds = _tfds(config.name, config.data_dir or None, config.manual_dir or None,
               config.verify_checksum)
  n_val = config.validation_examples
  if not 0 <= n_val < len(ds.train_labels):
    raise DataError(f'dataset.validation_examples={n_val} must be in [0, '
                    f'{len(ds.train_labels)}) for {ds.name}')
  if n_val:
    hold_out(ds, n_val)
  if config.num_train > 0:
    ds.train_images, ds.train_labels = ds.train_images[:config.num_train], ds.train_labels[:config.num_train]
  return ds


def _digits() -> Dataset:
  """scikit-learn's 1,797 8x8 handwritten digits (shipped in the package), as 32x32x3.

  A fixed, stratified-by-shuffle split keeps 300 images for test.
  """
  from sklearn.datasets import load_digits  # Lazy: only this dataset needs it.
  d = load_digits()
  images = np.round(d.images / 16.0 * 255).astype(np.uint8)        # (N, 8, 8) in [0, 16]
  images = np.kron(images, np.ones((1, 4, 4), np.uint8))            # Nearest upsampling to 32x32.
  images = np.repeat(images[..., None], 3, axis=-1)
  labels = d.target.astype(np.int32)
  order = np.random.default_rng(0).permutation(len(labels))
  test, train = order[:300], order[300:]
  return Dataset('digits', images[train], labels[train], images[test], labels[test], 10,
                 [str(i) for i in range(10)])


def _image_folder(name: str, root: str, image_size: int) -> Dataset:
  if name != 'cifar10':
    raise DataError(f'dataset.image_dir is read as CIFAR-10 (its class folders name its '
                    f'labels); dataset.name={name!r} cannot use it: set dataset.name=cifar10')
  from nin.data import image_folder  # Lazy: Pillow and the cache only when a folder is used.
  xtr, ytr, xte, yte = image_folder.load(root, CIFAR10_CLASSES, image_size)
  return Dataset(name, xtr, ytr, xte, yte, len(CIFAR10_CLASSES), list(CIFAR10_CLASSES))


def synthetic(num_train: int, num_test: int, size: int, classes: int = 10) -> Dataset:
  """Random images and labels (for benchmarks and smoke tests): no I/O, nothing to learn."""
  rng = np.random.default_rng(0)
  def split(n):
    return (rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            rng.integers(0, classes, (n,), dtype=np.int32))
  (xtr, ytr), (xte, yte) = split(num_train), split(num_test)
  return Dataset('synthetic', xtr, ytr, xte, yte, classes, [str(i) for i in range(classes)])


def _missing_message(name, data_dir, manual_dir, why):
  tarball = _TARBALLS[name]
  where = data_dir or '~/tensorflow_datasets'
  folder = ('; or set config.dataset.image_dir to a folder of its images '
            f'(train/<class>/*.png|jpg, test/<class>/...)' if name == 'cifar10' else '')
  return (f'{name} is not prepared in {where} and could not be obtained ({why}). Provide it '
          f'one of these ways: run once on a machine with internet access; set '
          f'config.dataset.data_dir to a TFDS data dir where {name} is prepared; put '
          f'{tarball} into a folder and set config.dataset.manual_dir to it'
          + (f' (looked in {manual_dir})' if manual_dir else '') + folder + '.')


def _reachable(url, timeout=10.0) -> bool:
  """Whether the download host answers; offline, TFDS would retry for minutes."""
  host = urllib.parse.urlparse(url).hostname
  def connect():
    socket.create_connection((host, 443), timeout=timeout).close()
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    try:
      pool.submit(connect).result(timeout=timeout)
      return True
    except (OSError, concurrent.futures.TimeoutError):
      return False


def _unverified(builder, name, manual_dir):
  """Makes the builder expect the checksum of the tarball in `manual_dir` (an opt-in).

  For a copy of the dataset that is not the official file, such as a re-encoded
  one: TFDS would otherwise refuse it as corrupt. The official URL keeps its name.
  """
  import unittest.mock
  from tensorflow_datasets.core.download import checksums
  path = os.path.join(manual_dir, _TARBALLS[name])
  info = checksums.compute_url_info(path)
  info = checksums.UrlInfo(size=info.size, checksum=info.checksum, filename=_TARBALLS[name])
  print(f'WARNING: preparing {name} from {path} without checking it against the official '
        f'checksum (dataset.verify_checksum=False)', flush=True)
  return unittest.mock.patch.object(type(builder), 'url_infos', {_URLS[name]: info})


def _prepare(builder, name, data_dir, manual_dir, verify_checksum=True):
  """Runs the TFDS builder once: download, or the tarball from `manual_dir`."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.download import download_manager
  if manual_dir and not os.path.isfile(os.path.join(manual_dir, _TARBALLS[name])):
    raise DataError(_missing_message(name, data_dir, manual_dir,
                                     f'{_TARBALLS[name]} not found in manual_dir'))
  if not manual_dir and not _reachable(_URLS[name]):
    raise DataError(_missing_message(name, data_dir, manual_dir, 'no network access'))
  try:
    import tensorflow as tf
  except ImportError as e:
    raise DataError(f'Preparing {name} with TFDS needs TensorFlow, which is not installed '
                    f"({e}); install it with: pip install -e '.[prepare]'") from None
  # TensorFlow only encodes images here; it must not claim accelerator memory.
  tf.config.set_visible_devices([], 'GPU')
  if not sys.stderr.isatty():
    tfds.disable_progress_bar()
  config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
  unverified = _unverified(builder, name, manual_dir) if manual_dir and not verify_checksum else None
  try:
    if unverified:
      with unverified:
        builder.download_and_prepare(download_config=config)
    else:
      builder.download_and_prepare(download_config=config)
  except download_manager.NonMatchingChecksumError:
    raise DataError(f'{os.path.join(manual_dir or "", _TARBALLS[name])} does not match the '
                    f'official checksum: the file is corrupt or truncated (download it '
                    f'again), or a copy that is not the official file (set '
                    f'dataset.verify_checksum=False to accept it)') from None
  except DataError:
    raise
  except Exception as e:  # Network failures surface as many exception types.
    if manual_dir:
      raise DataError(f'Could not prepare {name} from {manual_dir}/{_TARBALLS[name]} '
                      f'({type(e).__name__}: {str(e).splitlines()[0][:200]}); the file '
                      f'is probably corrupt: download it again') from None
    raise DataError(_missing_message(name, data_dir, manual_dir,
                                     f'{type(e).__name__}: {str(e).splitlines()[0][:200]}')) from None


def _read_split(builder, split):
  """Reads a split in the official order (TFDS stores records shuffled)."""
  source = builder.as_data_source(split=split)
  n = len(source)
  images = np.empty((n, *builder.info.features['image'].shape), np.uint8)
  labels = np.empty((n,), np.int32)
  order = np.empty((n,), np.int64)
  chunk = 1024
  for start in range(0, n, chunk):
    items = source.__getitems__(list(range(start, min(n, start + chunk))))
    for i, item in enumerate(items):
      images[start + i] = item['image']
      labels[start + i] = item['label']
      order[start + i] = int(item['id'].decode().rsplit('_', 1)[-1]) if isinstance(
          item['id'], bytes) else int(str(item['id']).rsplit('_', 1)[-1])
  index = np.argsort(order, kind='stable')
  return images[index], labels[index]


def _tfds(name: str, data_dir: Optional[str], manual_dir: Optional[str],
          verify_checksum: bool = True) -> Dataset:
  import tensorflow_datasets as tfds

  def damaged(e):
    where = os.path.join(data_dir or '~/tensorflow_datasets', name)
    return DataError(f'The prepared {name} in {where} cannot be read ({type(e).__name__}: '
                     f'{str(e).splitlines()[0][:160] if str(e) else ""}); delete that folder '
                     f'to prepare it again')

  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
    prepared = builder.is_prepared()
  except Exception as e:  # A damaged dataset_info.json surfaces as several types.
    raise damaged(e) from None
  if not prepared:
    try:
      _prepare(builder, name, data_dir, manual_dir, verify_checksum)
    except DataError:
      # The jobs of a sweep that start together on a fresh machine all prepare the
      # dataset; the first to finish renames its copy into place and TFDS fails the
      # others' renames. What the winner wrote is complete: read it.
      builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
      if not builder.is_prepared():
        raise
  try:
    xtr, ytr = _read_split(builder, 'train')
    xte, yte = _read_split(builder, 'test')
  except Exception as e:  # Truncated or foreign array_record files.
    raise damaged(e) from None
  labels = builder.info.features['label']
  return Dataset(name, xtr, ytr, xte, yte, labels.num_classes, list(labels.names))
