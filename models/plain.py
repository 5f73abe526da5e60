"""A 3x3-only baseline: no 1x1 layer anywhere.

VGG-style stages of 3x3 convs with ReLU, a 3x3/2 max pool between stages
(the same pooling NiN uses), and a last 3x3 conv with one map per class
followed by global average pooling, as in NiN, so even the classifier is not
a 1x1 layer. Dropout after each pool, as in NiN.

How the sizes in configs/plain.py were chosen (figures from
`python -m nin summary`), so that the comparison is fair:
- base: widths 64/128/224 with 2+2+2 convs: 990K parameters, within 3% of
  NiN's 966,986, at 0.14 G multiply-adds per image (NiN: 0.22 G). Matching
  parameters rather than multiply-adds asks the sharper question: with the
  same budget of weights, do 1x1 layers buy accuracy?
- large: widths 128/256/512 with 2+2+3 convs: 7.0M parameters and 0.76 G
  multiply-adds, the size class of the CIFAR GoogLeNet (5.9M, 1.45 G).

`Airbench` is the 3x3-only net of airbench94 (Jordan 2024, "94% on CIFAR-10 in
3.29 Seconds on a Single GPU", arXiv:2404.00498), the field's record for
accuracy per unit of training compute: a fixed 2x2 patch-whitening conv, three
groups of two 3x3 convs, a linear head. Its training recipe (configs/plain.py:airbench)
makes it the strongest 3x3-only baseline this project has.
"""
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from nin.layers import batch_norm, pooling, whitening
from nin import layers

class Plain(nn.Module):
  num_classes: int = 10
  stages: Sequence[Sequence[int]] = ((64, 64), (128, 128), (224, 224))
  dropout_rate: float = 0.3
  use_bn: bool = False
  bn_momentum: float = 0.9  # BatchNorm's running statistics (configs/common.py: fast sets 0.6).
  dtype: Any = jnp.float32
  impl: str = 'dense'  # Accepted for a uniform interface; there is no 1x1 layer.
  pool_impl: str = 'auto'   # How pooling runs: auto | taps | xla (nin/layers/pooling.py).

  @property
  def batchnorm(self) -> bool:
    """Whether the net normalises its convolutions (reports' recipe tables ask)."""
    return self.use_bn

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.astype(self.dtype)
    for s, widths in enumerate(self.stages):
      for j, f in enumerate(widths):
        x = layers.ConvUnit(f, 3, use_bn=self.use_bn, bn_momentum=self.bn_momentum,
                            dtype=self.dtype,
                            name=f'conv{s + 1}_{j + 1}')(x, train)
      if s < len(self.stages) - 1:
        x = pooling.Pool('max', 3, 2, self.pool_impl, name=f'pool{s + 1}')(x)
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = layers.ConvUnit(self.num_classes, 3, relu=False, dtype=self.dtype,
                        name='classifier')(x, train)
    return pooling.global_avg_pool(x).astype(jnp.float32)


def _torch_default_init(key, shape, dtype=jnp.float32):
  """PyTorch's default for Conv2d and Linear: uniform in +-1/sqrt(fan_in)."""
  bound = 1.0 / math.sqrt(math.prod(shape[:-1]))
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def dirac_init(key, shape, dtype=jnp.float32):
  """PyTorch's default, then the first min(C_in, C_out) filters pass their channel through.

  airbench starts each 3x3 conv close to the identity (`torch.nn.init.dirac_`
  on the first C_in filters): a conv whose C_out equals C_in starts as exactly
  the identity, and a widening one copies its input into its first channels.
  """
  kernel = _torch_default_init(key, shape, dtype)
  kh, kw, c_in, c_out = shape
  n = min(c_in, c_out)
  eye = jnp.zeros((kh, kw, c_in, n), dtype).at[kh // 2, kw // 2].set(jnp.eye(c_in, n, dtype=dtype))
  return kernel.at[..., :n].set(eye)


def _unit_uniform_init(key, shape, dtype=jnp.float32):
  """Uniform with standard deviation 1 (airbench94_muon: PyTorch's default, `w *= 1 / w.std()`)."""
  bound = math.sqrt(3.0)
  return jax.random.uniform(key, shape, dtype, -bound, bound)


HEAD_INITS = {'torch': _torch_default_init, 'unit': _unit_uniform_init}


class Airbench(nn.Module):
  """airbench94's network: whitening, three conv groups, a scaled linear head.

  32x32 input -> 2x2 whitening conv (VALID: 31x31, 24 channels) -> GELU ->
  3 groups of [3x3 conv, 2x2 max pool (31 -> 15 -> 7 -> 3), BatchNorm, GELU,
  3x3 conv, BatchNorm, GELU] -> 3x3 max pool (1x1) -> Dense without bias,
  times `logit_scale`. Convs have no bias; BatchNorm has a bias but no scale,
  epsilon 1e-12 and momentum 0.6 (running averages that follow the last few
  batches), as in airbench. The whitening filters come from the training
  images (`nin.layers.whitening.whitening_kernel`, set by the registry's data fit).
  """
  num_classes: int = 10
  widths: Sequence[int] = (64, 256, 256)
  whiten_kernel_size: int = 2
  bn_momentum: float = 0.6
  logit_scale: float = 1 / 9
  # 'torch': PyTorch's default uniform; 'unit': the same rescaled to standard deviation 1
  # (airbench94_muon's head, with logit_scale 1/256).
  head_init: str = 'torch'
  dtype: Any = jnp.float32
  impl: str = 'dense'       # Accepted for a uniform interface; there is no 1x1 layer.
  pool_impl: str = 'auto'   # Accepted likewise: the block max pools are reshapes.

  @property
  def batchnorm(self) -> bool:
    """Always: BatchNorm after every conv is part of airbench's net."""
    return True

  @nn.compact
  def __call__(self, x, train: bool = False):
    gelu = lambda y: nn.gelu(y, approximate=False)  # PyTorch's nn.GELU: the exact erf form.
    x = whitening.PatchWhitening(self.whiten_kernel_size, dtype=self.dtype, name='whiten')(x)
    x = gelu(x)
    for g, width in enumerate(self.widths, 1):
      for j in (1, 2):
        x = nn.Conv(width, (3, 3), padding='SAME', use_bias=False, kernel_init=dirac_init,
                    dtype=self.dtype, name=f'group{g}_conv{j}')(x)
        if j == 1:
          x = pooling.max_pool_blocks(x, 2)
        x = batch_norm.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                             epsilon=1e-12, use_scale=False, dtype=self.dtype,
                             name=f'group{g}_bn{j}')(x)
        x = gelu(x)
    x = pooling.max_pool_blocks(x, x.shape[1])  # The last 3x3 map to one pixel.
    x = x.reshape(x.shape[0], -1)
    if self.head_init not in HEAD_INITS:
      raise ValueError(f'Unknown airbench head_init {self.head_init!r}; valid: '
                       f'{", ".join(HEAD_INITS)}')
    x = nn.Dense(self.num_classes, use_bias=False, kernel_init=HEAD_INITS[self.head_init],
                 dtype=self.dtype, name='head')(x)
    return (x * self.logit_scale).astype(jnp.float32)


def whitening_data_fit(model: Airbench, params, images_nhwc):
  """`params` with the whitening filters computed from (normalised) training images."""
  kernel = whitening.whitening_kernel(images_nhwc, model.whiten_kernel_size)
  return {**params, 'whiten': {**params['whiten'], 'kernel': kernel}}
