"""On-device batching and augmentation: the dataset lives on the accelerator.

Every host copies the whole uint8 split to every one of its devices once
(CIFAR is 150 MB). A batch is then a pure function of (seed, epoch, step): a
jitted `shard_map` draws the epoch's permutation (the same on every device of
every host), gathers each device's slice of the global batch by the device's
position in the mesh, and augments it (random crop after zero or reflect
padding, horizontal flip, optional cutout) with a key per example derived
from its position in the global batch. With `alternate_flips` (airbench's),
each image is mirrored on every other epoch instead of at random: a random
half of the images (fixed by the seed) on even epochs, the other half on odd
ones. So a resumed run sees exactly the batches of an
uninterrupted one, and one device sees exactly what four devices, or two
hosts of two devices, see together.

Every image is then preprocessed on the device by the run's `preprocess.Transform`
(fitted on the training examples only; per-channel standardisation by default).

Evaluation walks a split ('validation' or 'test') in order, padding the last
batch; a mask marks the padding, so every example counts exactly once.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from nin.runtime import distributed
from nin.data import preprocess
from nin import random_streams
from nin.data.datasets import Dataset
from nin.errors import ConfigError

PAD_MODES = ('zeros', 'reflect')


def _place_per_device(mesh, array: np.ndarray):
  """A global (num_devices, *array.shape) array; each device holds its host's copy."""
  local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
  shards = [jax.device_put(array[None], d) for d in local]
  shape = (mesh.devices.size, *array.shape)
  return jax.make_array_from_single_device_arrays(
      shape, NamedSharding(mesh, P(distributed.DATA)), shards)


def alternate_flips(flip_key, indices, epoch):
  """Whether each image (by its index in the training split) is mirrored in `epoch`."""
  start = jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(flip_key, i)))(indices)
  return start ^ (epoch % 2 == 1)


def augment(images_u8, keys, crop_padding: int, flip: bool, cutout: int,
            pad_mode: str = 'zeros', flips=None):
  """Per-example random crop (after zero or reflect padding), flip and cutout on uint8
  NHWC images; `flips` (one bool per image), if given, replaces the random flips."""
  n, h, w, c = images_u8.shape
  mode = {'zeros': 'constant', 'reflect': 'reflect'}[pad_mode]

  def one(image, key, flipped):
    k_crop, k_flip, k_cut = jax.random.split(key, 3)
    if crop_padding:
      p = crop_padding
      padded = jnp.pad(image, ((p, p), (p, p), (0, 0)), mode=mode)
      dy, dx = jax.random.randint(k_crop, (2,), 0, 2 * p + 1)
      image = jax.lax.dynamic_slice(padded, (dy, dx, 0), (h, w, c))
    if flip:
      flipped = jax.random.bernoulli(k_flip) if flipped is None else flipped
      image = jnp.where(flipped, image[:, ::-1], image)
    if cutout:
      cy, cx = jax.random.randint(k_cut, (2,), 0, jnp.array([h, w]))
      ys, xs = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
      inside = (jnp.abs(ys - cy) <= cutout // 2) & (jnp.abs(xs - cx) <= cutout // 2)
      image = jnp.where(inside[..., None], 0, image)
    return image

  if flips is None:
    return jax.vmap(lambda image, key: one(image, key, None))(images_u8, keys)
  return jax.vmap(one)(images_u8, keys, flips)


class Pipeline:
  """Training and evaluation batches for a mesh, drawn on the devices."""

  def __init__(self, dataset: Dataset, mesh, batch_size: int, eval_batch_size: int,
               seed: int, crop_padding: int = 4, flip: bool = True, cutout: int = 0,
               transform: preprocess.Transform = None, pad_mode: str = 'zeros',
               alternate_flips: bool = False):
    distributed.check_batch_size(batch_size)
    distributed.check_batch_size(eval_batch_size, 'eval_batch_size')
    self.mesh = mesh
    self.num_devices = mesh.devices.size
    self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
    n_train = len(dataset.train_labels)  # The whole split, on every host.
    if n_train < batch_size:
      raise ConfigError(f'batch_size={batch_size} is larger than the training set '
                       f'({n_train} examples)')
    self.steps_per_epoch = n_train // batch_size
    self.num_examples = {'test': len(dataset.test_labels)}
    if dataset.has_validation:
      self.num_examples['validation'] = len(dataset.val_labels)
    # Fitted on the training examples only: never validation or test.
    self.transform = transform or preprocess.fit('standardize', dataset.train_images)
    self._transform_arrays = jax.device_put(
        {k: jnp.asarray(v) for k, v in self.transform.arrays.items()},
        distributed.replicated(mesh))
    self._train = (_place_per_device(mesh, dataset.train_images),
                   _place_per_device(mesh, dataset.train_labels))
    self._eval = {split: tuple(_place_per_device(mesh, a) for a in dataset.split(split))
                  for split in self.num_examples}
    self._key = random_streams.key(seed, random_streams.DATA)
    self._flip_key = random_streams.key(seed, random_streams.FLIP)
    self._aug = dict(crop_padding=crop_padding, flip=flip, cutout=cutout, pad_mode=pad_mode)
    self._alternate_flips = flip and alternate_flips
    spec = P(distributed.DATA)
    self._perm_fn = jax.jit(jax.shard_map(self._permutation, mesh=mesh, in_specs=(spec, P()),
                                          out_specs=spec, check_vma=False))
    self._train_fn = jax.jit(self._shard_mapped(self._train_slice, 3))
    self._eval_fn = jax.jit(self._shard_mapped(self._eval_slice, 2))
    self._epoch_perm = (None, None)  # (epoch, its permutation): drawn once per epoch.

  @classmethod
  def from_config(cls, dataset: Dataset, mesh, config, transform: preprocess.Transform,
                  augment: bool = True) -> 'Pipeline':
    """The pipeline a run's config describes; `augment=False` for evaluation only."""
    d = config.dataset
    aug = (dict(crop_padding=d.crop_padding, flip=d.flip, cutout=d.cutout, pad_mode=d.pad_mode,
                alternate_flips=d.alternate_flips) if augment
           else dict(crop_padding=0, flip=False))
    return cls(dataset, mesh, config.batch_size, config.eval_batch_size, config.seed,
               transform=transform, **aug)

  def _shard_mapped(self, fn, num_sharded):
    spec = P(distributed.DATA)
    return jax.shard_map(fn, mesh=self.mesh, in_specs=(spec,) * num_sharded + (P(), P(), P()),
                         out_specs=spec, check_vma=False)

  def _permutation(self, labels, epoch):
    """The epoch's order (every device of every host draws the same one)."""
    return jax.random.permutation(jax.random.fold_in(self._key, epoch), labels.shape[1])[None]

  def _offset(self, per_device):
    """This device's first index within the global batch."""
    return jax.lax.axis_index(distributed.DATA) * per_device

  def _normalize(self, images_u8, arrays):
    return preprocess.apply(self.transform.kind, arrays, images_u8)

  def _train_slice(self, images, labels, perm, epoch, step, arrays):
    images, labels, perm = images[0], labels[0], perm[0]  # This device's copy of its host's shard.
    per_device = self.batch_size // self.num_devices
    offset = self._offset(per_device)
    epoch_key = jax.random.fold_in(self._key, epoch)
    idx = jax.lax.dynamic_slice(perm, (step * self.batch_size + offset,), (per_device,))
    step_key = jax.random.fold_in(epoch_key, step)
    keys = jax.vmap(lambda i: jax.random.fold_in(step_key, i))(offset + jnp.arange(per_device))
    flips = (alternate_flips(self._flip_key, idx, epoch)
             if self._alternate_flips else None)
    x = augment(images[idx], keys, **self._aug, flips=flips)
    return self._normalize(x, arrays), labels[idx]

  def _eval_slice(self, images, labels, _, step, arrays):
    images, labels = images[0], labels[0]
    per_device = self.eval_batch_size // self.num_devices
    pos = step * self.eval_batch_size + self._offset(per_device) + jnp.arange(per_device)
    idx = jnp.minimum(pos, labels.shape[0] - 1)
    mask = pos < labels.shape[0]
    return self._normalize(images[idx], arrays), labels[idx], mask

  def preprocessed(self, images_u8):
    """`images_u8` (a host array) as the model sees them, without augmentation, replicated."""
    x = jax.device_put(np.asarray(images_u8), distributed.replicated(self.mesh))
    return jax.jit(self._normalize)(x, self._transform_arrays)

  def train_batch(self, epoch: int, step: int):
    """(images float32 NHWC, labels int32), sharded over 'data'; step counts within the epoch."""
    if self._epoch_perm[0] != epoch:
      self._epoch_perm = (epoch, self._perm_fn(self._train[1], jnp.int32(epoch)))
    return self._train_fn(*self._train, self._epoch_perm[1], jnp.int32(epoch), jnp.int32(step),
                          self._transform_arrays)

  @property
  def splits(self):
    """The evaluation splits this pipeline holds: 'test', and 'validation' if held out."""
    return tuple(self.num_examples)

  def eval_steps(self, split: str = 'test') -> int:
    return math.ceil(self.num_examples[split] / self.eval_batch_size)

  def eval_batches(self, split: str = 'test'):
    """Yields (images, labels, mask) covering `split` exactly once."""
    if split not in self._eval:
      raise ValueError(f'No {split!r} split here; this pipeline holds {", ".join(self.splits)}')
    for step in range(self.eval_steps(split)):
      yield self._eval_fn(*self._eval[split], jnp.int32(0), jnp.int32(step),
                          self._transform_arrays)
