"""Input preprocessing: statistics from the training examples only, applied on the device.

  standardize  per-channel mean and standard deviation (the default).
  gcn_zca      global contrast normalisation of every image, then ZCA whitening:
               the CIFAR-10 preprocessing of maxout networks, which the NiN paper
               says it reuses exactly (Sec. 4.2).

`fit` computes a `Transform` from the training images (after the validation
hold-out, so validation and test never enter the statistics); the pipeline
applies it to every batch on the device, after augmentation. train.py saves
it in the run's workdir (`for_run`), and eval.py and
notebooks load it from there, so a run's images are transformed the same way
wherever they are read.

GCN, as in maxout's pylearn2 setup: each image (as a vector of H*W*C values
in [0, 1]) loses its own mean and is scaled to norm `GCN_SCALE` (55, so that
a 32x32x3 image has values of about unit size). ZCA: with the GCN'd training
images' mean m and covariance U diag(s) U^T, x -> (x - m) U diag(1/sqrt(s +
eps)) U^T, eps = `ZCA_EPSILON` (maxout's filter bias 0.1, which keeps the
near-zero directions from being blown up into noise). With eps -> 0 the
training images' covariance becomes the identity on the space they span: every
GCN'd image sums to zero, so that space leaves out the all-ones direction.
"""
import dataclasses
import os
import sys

import jax.numpy as jnp
import numpy as np

from nin import workdir as workdir_lib

PREPROCESS = ('standardize', 'gcn_zca')
GCN_SCALE = 55.0
ZCA_EPSILON = 0.1
_CHUNK = 4096  # Images per chunk of the covariance sum: bounds host memory on 50,000 images.


@dataclasses.dataclass(frozen=True)
class Transform:
  """A fitted preprocessing: its kind and arrays ({'mean', 'std'} or {'mean', 'zca'})."""
  kind: str
  arrays: dict

  def __call__(self, images_u8):
    """uint8 (N, H, W, C) -> float32, on whatever device the images are."""
    return apply(self.kind, {k: jnp.asarray(v) for k, v in self.arrays.items()}, images_u8)

  def save(self, path: str) -> None:
    """Writes the transform to `path` atomically (a reader never sees a part of it)."""
    workdir_lib.write_atomically(
        path, lambda f: np.savez(f, kind=np.asarray(self.kind), **self.arrays))

  @classmethod
  def load(cls, path: str) -> 'Transform':
    with np.load(path) as z:
      return cls(str(z['kind']), {k: z[k] for k in z.files if k != 'kind'})


def check(kind: str) -> None:
  if kind not in PREPROCESS:
    raise ValueError(f'Unknown dataset.preprocess {kind!r}; valid: {", ".join(PREPROCESS)}')


def apply(kind: str, arrays, images_u8):
  """The transform as a pure function of its arrays: jit- and shard_map-friendly."""
  x = images_u8.astype(jnp.float32) / 255.0
  if kind == 'standardize':
    return (x - arrays['mean']) / arrays['std']
  n, shape = x.shape[0], x.shape[1:]
  flat = _gcn(x.reshape(n, -1), jnp)
  return ((flat - arrays['mean']) @ arrays['zca']).reshape(n, *shape)


def _gcn(flat, xp):
  flat = flat - flat.mean(1, keepdims=True)
  norm = xp.sqrt((flat * flat).sum(1, keepdims=True))
  return GCN_SCALE * flat / xp.maximum(norm, 1e-8)


def fit(kind: str, train_images_u8: np.ndarray, zca_epsilon: float = ZCA_EPSILON) -> Transform:
  """Fits `kind` on the training images (uint8 NHWC, host memory)."""
  check(kind)
  if kind == 'standardize':
    x = train_images_u8.reshape(-1, train_images_u8.shape[-1]).astype(np.float64) / 255
    return Transform(kind, {'mean': x.mean(0).astype(np.float32),
                            'std': np.maximum(x.std(0), 1e-3).astype(np.float32)})
  n = len(train_images_u8)
  d = int(np.prod(train_images_u8.shape[1:]))
  total, outer = np.zeros(d), np.zeros((d, d))
  for start in range(0, n, _CHUNK):
    chunk = _gcn(train_images_u8[start:start + _CHUNK].reshape(-1, d).astype(np.float64) / 255, np)
    total += chunk.sum(0)
    outer += chunk.T @ chunk
  mean = total / n
  cov = outer / n - np.outer(mean, mean)
  s, u = np.linalg.eigh(cov)
  zca = (u * (1.0 / np.sqrt(np.maximum(s, 0.0) + zca_epsilon))) @ u.T
  return Transform(kind, {'mean': mean.astype(np.float32), 'zca': zca.astype(np.float32)})


def for_run(config, workdir, dataset) -> Transform:
  """The run's input transform: the one saved in its workdir (None: a fresh run), else
  fitted on `dataset`'s training images. A saved file that is damaged is fitted again (the
  fit is deterministic), with a warning. train.py writes it with `store`, so that a
  resumed run, eval.py and notebooks apply exactly it."""
  kind = config.dataset.preprocess
  saved = _saved(workdir)
  if saved is not None and saved.kind == kind:
    return saved
  return fit(kind, dataset.train_images, config.dataset.zca_epsilon)


def _saved(workdir):
  path = os.path.join(workdir, workdir_lib.PREPROCESS_FILE) if workdir else None
  if path is None or not os.path.exists(path):
    return None
  try:
    return Transform.load(path)
  except Exception as e:  # numpy raises several types for a damaged or foreign file.
    print(f'Warning: {path} is unreadable ({type(e).__name__}); fitting it again',
          file=sys.stderr, flush=True)
    return None


def store(transform: Transform, workdir: str) -> None:
  """Writes the run's transform into its workdir, unless the same kind is saved there."""
  saved = _saved(workdir)
  if saved is None or saved.kind != transform.kind:
    transform.save(os.path.join(workdir, workdir_lib.PREPROCESS_FILE))
