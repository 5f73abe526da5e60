"""CIFAR-10 from a folder of image files, without TensorFlow Datasets.

    ROOT/train/<class>/*.png|*.jpg|*.jpeg
    ROOT/test/<class>/*.png|*.jpg|*.jpeg

is the layout of many copies of CIFAR-10 (one folder per class, named as the
dataset names its classes). `load` decodes every image once with Pillow into
the uint8 arrays the TFDS source gives, labels in the dataset's own class
order (by folder name), and caches the arrays beside the user's other caches
(`cache_dir()`): a later run reads one file instead of 60,000. The cache is
keyed on the folder's listing (names, sizes, modification times), so a changed
file is decoded again. Within a split, images are ordered by class, then by
file name: the same order on every machine, whatever the file system lists.

Nothing here imports TensorFlow: a machine with JAX, Pillow and numpy trains
from such a folder (a GPU machine without internet, for example).
"""
import concurrent.futures
import hashlib
import os
import sys

import numpy as np

from nin.errors import DataError

SPLITS = ('train', 'test')
EXTENSIONS = ('.png', '.jpg', '.jpeg')
_CACHE_VERSION = 1  # Bump when the arrays' meaning changes: older caches are then ignored.


def cache_dir() -> str:
  """Where decoded folders are kept: $XDG_CACHE_HOME/nin (default ~/.cache/nin)."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'nin')


def _listing(root: str, class_names) -> dict:
  """{split: [(path, label), ...]} sorted by label then name; every bad tree is one line."""
  layout = f'expected {root}/{{train,test}}/<class>/*.png|jpg with the classes ' \
           f'{", ".join(class_names)}'
  if not os.path.isdir(root):
    raise DataError(f'dataset.image_dir={root} is not a folder; {layout}')
  listing = {}
  for split in SPLITS:
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
      raise DataError(f'{root} has no {split}/ folder; {layout}')
    folders = sorted(e.name for e in os.scandir(split_dir)
                     if e.is_dir() and not e.name.startswith('.'))
    unknown = [f for f in folders if f not in class_names]
    if unknown:
      raise DataError(f'{split_dir}/{unknown[0]} is not a class of this dataset; valid: '
                      f'{", ".join(class_names)}')
    missing = [c for c in class_names if c not in folders]
    if missing:
      raise DataError(f'{split_dir} has no folder for the classes {", ".join(missing)}; '
                      f'{layout}')
    files = []
    for label, name in enumerate(class_names):
      class_dir = os.path.join(split_dir, name)
      names = sorted(e.name for e in os.scandir(class_dir)
                     if e.is_file() and not e.name.startswith('.'))
      other = [n for n in names if not n.lower().endswith(EXTENSIONS)]
      if other:
        raise DataError(f'{os.path.join(class_dir, other[0])} is not an image file; valid '
                        f'extensions: {", ".join(EXTENSIONS)}')
      if not names:
        raise DataError(f'{class_dir} holds no images; {layout}')
      files += [(os.path.join(class_dir, n), label) for n in names]
    listing[split] = files
  return listing


def _key(root, listing, image_size) -> str:
  h = hashlib.sha256(f'{_CACHE_VERSION} {os.path.abspath(root)} {image_size}'.encode())
  for split in SPLITS:
    for path, label in listing[split]:
      st = os.stat(path)
      h.update(f'{split} {os.path.relpath(path, root)} {label} {st.st_size} '
               f'{st.st_mtime_ns}\n'.encode())
  return h.hexdigest()[:20]


def _decode(path: str, image_size: int) -> np.ndarray:
  from PIL import Image  # Lazy: only this source and the TFDS reader need it.
  try:
    with Image.open(path) as im:
      im = im.convert('RGB')  # Loads the pixels; a grey image becomes three equal channels.
  except Exception as e:  # Truncated files, other formats: Pillow raises several types.
    raise DataError(f'{path} cannot be read as an image ({type(e).__name__}: '
                    f'{str(e).splitlines()[0][:160] if str(e) else ""})') from None
  if im.size != (image_size, image_size):
    raise DataError(f'{path} is {im.size[0]}x{im.size[1]} pixels; the images of this dataset '
                    f'are {image_size}x{image_size}')
  return np.asarray(im, np.uint8)


def _decode_split(files, image_size: int):
  images = np.empty((len(files), image_size, image_size, 3), np.uint8)
  labels = np.array([label for _, label in files], np.int32)
  # Pillow decodes outside the GIL: threads use every core.
  with concurrent.futures.ThreadPoolExecutor(min(32, os.cpu_count() or 1)) as pool:
    for i, image in enumerate(pool.map(lambda f: _decode(f[0], image_size), files,
                                       chunksize=256)):
      images[i] = image
  return images, labels


def load(root: str, class_names, image_size: int = 32):
  """(train_images, train_labels, test_images, test_labels) of the folder `root`."""
  root = os.path.expanduser(root)
  try:  # A folder that cannot be listed, a file that cannot be read, a symlink loop.
    listing = _listing(root, list(class_names))
    key = _key(root, listing, image_size)
  except OSError as e:
    raise DataError(f'dataset.image_dir: {e.filename or root} cannot be read '
                    f'({e.strerror or type(e).__name__})') from None
  cached = os.path.join(cache_dir(), f'image_folder-{key}.npz')
  if os.path.isfile(cached):
    try:
      with np.load(cached) as z:
        return z['train_images'], z['train_labels'], z['test_images'], z['test_labels']
    except Exception:  # A damaged cache is decoded again (and replaced) below.
      pass
  n = sum(len(f) for f in listing.values())
  print(f'Decoding {n} images from {root} (once: cached in {cached})', flush=True)
  (xtr, ytr), (xte, yte) = (_decode_split(listing[s], image_size) for s in SPLITS)
  _save(cached, train_images=xtr, train_labels=ytr, test_images=xte, test_labels=yte)
  return xtr, ytr, xte, yte


def _save(path: str, **arrays) -> None:
  """Writes the cache atomically; a cache that cannot be written only costs speed."""
  tmp = f'{path}.{os.getpid()}.tmp'
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(tmp, 'wb') as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  except OSError as e:
    print(f'WARNING: could not cache the decoded images in {path} ({e}); they will be '
          f'decoded again next time', file=sys.stderr, flush=True)
    try:
      os.remove(tmp)
    except OSError:
      pass
