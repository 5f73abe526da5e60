"""CIFAR-10 from a folder of images (nin/data/image_folder.py): the arrays, the cache, the errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import runs
from configs import common
from nin import data, errors
from nin.data import image_folder

pytestmark = pytest.mark.gpu_path  # Also run under the newer version set (.ci/run).

CLASSES = data.CIFAR10_CLASSES


def make_tree(root, per_class=(3, 2), size=32, seed=0):
  """ROOT/{train,test}/<class>/NNNN.png|jpg with random images; returns the PNG arrays
  written, {split: [(class index, file name, array)]}."""
  rng = np.random.default_rng(seed)
  written = {}
  for split, n in zip(('train', 'test'), per_class):
    written[split] = []
    for label, name in enumerate(CLASSES):
      os.makedirs(os.path.join(root, split, name))
      for i in range(n):
        # Flat 8x8 blocks: JPEG keeps them almost exactly, so its copies compare closely too.
        blocks = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        image = np.kron(blocks, np.ones((8, 8, 1), np.uint8))
        # Mostly PNG (lossless, so compared exactly); one JPEG per class, as many copies are.
        ext = '.jpg' if i == n - 1 else '.png'
        Image.fromarray(image).save(os.path.join(root, split, name, f'{i:04d}{ext}'),
                                    **({'quality': 95, 'subsampling': 0} if ext == '.jpg' else {}))
        written[split].append((label, f'{i:04d}{ext}', image))
  return written


@pytest.fixture
def tree(tmp_path, monkeypatch):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  root = str(tmp_path / 'cifar')
  return root, make_tree(root)


def _cfg(root, **kw):
  c = common.get_base_config().dataset
  c.image_dir, c.validation_examples = root, 0
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def test_the_folder_gives_the_images_and_labels_by_class_name(tree):
  root, written = tree
  ds = data.load(_cfg(root))
  assert ds.class_names == list(CLASSES) and ds.num_classes == 10
  assert ds.train_images.shape == (30, 32, 32, 3) and ds.train_images.dtype == np.uint8
  assert ds.train_labels.dtype == np.int32
  for split, images, labels in (('train', ds.train_images, ds.train_labels),
                                ('test', ds.test_images, ds.test_labels)):
    # Ordered by class in CIFAR-10's label order, then by file name.
    np.testing.assert_array_equal(labels, [label for label, _, _ in written[split]])
    for got, (_, name, image) in zip(images, written[split]):
      if name.endswith('.png'):
        np.testing.assert_array_equal(got, image)
      else:  # JPEG is lossy: close, not equal.
        assert np.abs(got.astype(int) - image).mean() < 8


def test_validation_is_held_out_as_for_tfds(tree):
  root, _ = tree
  ds = data.load(_cfg(root, validation_examples=10))
  assert len(ds.val_labels) == 10 and len(ds.train_labels) == 20
  np.testing.assert_array_equal(np.bincount(ds.val_labels, minlength=10), [1] * 10)


def test_decoded_once_then_read_from_the_cache_until_a_file_changes(tree, monkeypatch):
  root, _ = tree
  first = image_folder.load(root, CLASSES)
  cached = [f for f in os.listdir(image_folder.cache_dir()) if f.endswith('.npz')]
  assert len(cached) == 1

  def no_decoding(*_):
    raise AssertionError('decoded again')
  with monkeypatch.context() as m:
    m.setattr(image_folder, '_decode', no_decoding)
    again = image_folder.load(root, CLASSES)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  # A changed image is seen: the listing (size, time) keys the cache.
  path = os.path.join(root, 'test', 'cat', '0000.png')
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path)
  os.utime(path, ns=(1, 1))
  changed = image_folder.load(root, CLASSES)
  assert not np.array_equal(changed[2], first[2]) and changed[2][3 * 2].max() == 0


def test_an_unwritable_cache_only_warns(tree, monkeypatch, capsys):
  root, _ = tree
  blocker = os.path.join(os.path.dirname(root), 'file')
  open(blocker, 'w').close()
  monkeypatch.setenv('XDG_CACHE_HOME', blocker)  # A file where the cache folder would be.
  xtr, *_ = image_folder.load(root, CLASSES)
  assert len(xtr) == 30 and 'could not cache' in capsys.readouterr().err


@pytest.mark.parametrize('damage, message', [
    (lambda r: os.rename(os.path.join(r, 'test'), os.path.join(r, 'tst')),
     r'has no test/ folder; expected .*/\{train,test\}/<class>/\*\.png\|jpg'),
    (lambda r: os.rename(os.path.join(r, 'train', 'cat'), os.path.join(r, 'train', 'kitten')),
     r'train/kitten is not a class of this dataset; valid: airplane, automobile, bird, cat'),
    (lambda r: os.rename(os.path.join(r, 'test', 'truck'), os.path.join(r, 'test', '.truck')),
     r'test has no folder for the classes truck'),
    (lambda r: open(os.path.join(r, 'train', 'dog', '0001.png'), 'wb').write(b'not a png'),
     r'train/dog/0001.png cannot be read as an image \(UnidentifiedImageError'),
    (lambda r: Image.new('RGB', (28, 28)).save(os.path.join(r, 'test', 'ship', '0000.png')),
     r'test/ship/0000.png is 28x28 pixels; the images of this dataset are 32x32'),
    (lambda r: open(os.path.join(r, 'train', 'frog', 'notes.txt'), 'w').write('x'),
     r'train/frog/notes.txt is not an image file; valid extensions: .png, .jpg, .jpeg'),
])
def test_a_bad_tree_is_one_line_naming_what_is_wrong(tree, damage, message):
  root, _ = tree
  damage(root)
  with pytest.raises(errors.DataError, match=message) as e:
    data.load(_cfg(root))
  assert '\n' not in str(e.value)


def test_stray_files_beside_the_folders_are_ignored(tree):
  root, _ = tree
  open(os.path.join(root, 'README.md'), 'w').close()          # As in common copies.
  open(os.path.join(root, 'train', '.DS_Store'), 'w').close()
  open(os.path.join(root, 'train', 'cat', '.DS_Store'), 'w').close()
  assert len(data.load(_cfg(root)).train_labels) == 30


def test_only_cifar10_reads_a_folder_and_a_missing_folder_is_named(tree):
  root, _ = tree
  with pytest.raises(errors.DataError, match=r"dataset.name='cifar100' cannot use it"):
    data.load(_cfg(root, name='cifar100'))
  with pytest.raises(errors.DataError, match=r'dataset.image_dir=/no/such is not a folder'):
    data.load(_cfg('/no/such'))


def test_training_from_a_folder_imports_neither_tensorflow_nor_tfds(tree):
  root, _ = tree
  code = f'''
import sys
from configs import common
from nin import train
c = common.get_base_config()
c.dataset.image_dir, c.dataset.validation_examples = {root!r}, 10
c.model.name, c.batch_size, c.eval_batch_size, c.num_train_steps = 'plain', 10, 10, 2
c.model.stages = ((4,), (4,), (4,))
train.train_and_evaluate(c, sys.argv[1])
print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets')))
'''
  p = subprocess.run([sys.executable, '-c', code, os.path.join(os.path.dirname(root), 'run')],
                     cwd=runs.ROOT, env=dict(runs.env(), XDG_CACHE_HOME=os.environ['XDG_CACHE_HOME']),
                     capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr
  assert p.stdout.strip().splitlines()[-1] == '[]'
  assert 'Done: step 2' in p.stdout
