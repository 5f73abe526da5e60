"""GoogLeNet / Inception v1 (Szegedy et al. 2014) with and without 1x1 bottlenecks.

An Inception block runs four branches in parallel and concatenates them on
the channel axis: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max pool ->
1x1 projection. The 1x1 "reduce" layers are what make the block affordable:
the 3x3 and 5x5 convs see #reduce channels instead of all C_in.

`bottleneck=False` is the paper's "naive" block (Fig. 2a) without the two
reduce layers, so the 3x3 and 5x5 convs read all C_in channels. Fig. 2a also
has no pool projection, which makes widths grow block after block; here the
pool projection stays, so both variants have identical block output widths and
differ exactly by the reduce layers.

Layouts:
- 'imagenet': Table 1 of the paper, 224x224 inputs, 1000 classes (without the
  auxiliary classifiers and local response normalisation, which hold no
  parameters in the table's columns or were dropped by later work).
- 'cifar': a 3x3 stem of 192 channels for 32x32 inputs, then blocks 3a..5b
  with the paper's widths and two 3x3/2 max pools (32 -> 16 -> 8), global
  average pooling and a linear classifier; 5.9M parameters with BatchNorm.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from nin import layers
from nin.layers import pooling

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    '3a': (64, 96, 128, 16, 32, 32),
    '3b': (128, 128, 192, 32, 96, 64),
    '4a': (192, 96, 208, 16, 48, 64),
    '4b': (160, 112, 224, 24, 64, 64),
    '4c': (128, 128, 256, 24, 64, 64),
    '4d': (112, 144, 288, 32, 64, 64),
    '4e': (256, 160, 320, 32, 128, 128),
    '5a': (256, 160, 320, 32, 128, 128),
    '5b': (384, 192, 384, 48, 128, 128),
}
# Max pools (3x3, stride 2) follow these blocks.
POOL_AFTER = ('3b', '4e')


class Inception(nn.Module):
  """One Inception v1 block; `bottleneck=False` drops the 3x3/5x5 reduce layers."""
  c1: int
  c3_reduce: int
  c3: int
  c5_reduce: int
  c5: int
  pool_proj: int
  bottleneck: bool = True
  use_bn: bool = False
  bn_momentum: float = 0.9
  impl: str = 'dense'
  pool_impl: str = 'auto'   # How pooling runs: auto | taps | xla (nin/layers/pooling.py).
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    def unit(features, k, name):
      return layers.ConvUnit(features, k, use_bn=self.use_bn, bn_momentum=self.bn_momentum,
                             impl=self.impl, dtype=self.dtype, name=name)

    b1 = unit(self.c1, 1, '1x1')(x, train)
    b3, b5 = x, x
    if self.bottleneck:
      b3 = unit(self.c3_reduce, 1, '3x3_reduce')(x, train)
      b5 = unit(self.c5_reduce, 1, '5x5_reduce')(x, train)
    b3 = unit(self.c3, 3, '3x3')(b3, train)
    b5 = unit(self.c5, 5, '5x5')(b5, train)
    bp = pooling.Pool('max', 3, 1, self.pool_impl, name='pool')(x)
    bp = unit(self.pool_proj, 1, 'pool_proj')(bp, train)
    return jnp.concatenate([b1, b3, b5, bp], axis=-1)


class GoogLeNet(nn.Module):
  num_classes: int = 10
  layout: str = 'cifar'
  bottleneck: bool = True
  blocks: Sequence[str] = tuple(INCEPTION)
  stem_width: int = 192
  width_divisor: int = 1  # >1 divides every Inception width (narrow CPU variants).
  dropout_rate: float = 0.4
  use_bn: bool = True
  bn_momentum: float = 0.9  # BatchNorm's running statistics (configs/common.py: fast sets 0.6).
  impl: str = 'dense'
  pool_impl: str = 'auto'   # How pooling runs: auto | taps | xla (nin/layers/pooling.py).
  dtype: Any = jnp.float32

  @property
  def batchnorm(self) -> bool:
    """Whether the net normalises its convolutions (reports' recipe tables ask)."""
    return self.use_bn

  @nn.compact
  def __call__(self, x, train: bool = False):
    def unit(features, k, name, strides=1):
      return layers.ConvUnit(features, k, strides, use_bn=self.use_bn,
                             bn_momentum=self.bn_momentum, impl=self.impl, dtype=self.dtype,
                             name=name)

    x = x.astype(self.dtype)
    if self.layout == 'imagenet':
      x = unit(64, 7, 'conv1', strides=2)(x, train)           # 112x112x64
      x = pooling.Pool('max', 3, 2, self.pool_impl, name='pool1')(x)  # 56x56x64
      x = unit(64, 1, 'conv2_reduce')(x, train)
      x = unit(self.stem_width, 3, 'conv2')(x, train)           # 56x56x192
      x = pooling.Pool('max', 3, 2, self.pool_impl, name='pool2')(x)  # 28x28x192
    elif self.layout == 'cifar':
      x = unit(self.stem_width, 3, 'stem')(x, train)            # 32x32x192
    else:
      raise ValueError(f"Unknown GoogLeNet layout {self.layout!r}; valid: cifar, imagenet")
    for name in self.blocks:
      widths = [max(4, c // self.width_divisor) for c in INCEPTION[name]]
      x = Inception(*widths, bottleneck=self.bottleneck, use_bn=self.use_bn,
                    bn_momentum=self.bn_momentum, impl=self.impl, pool_impl=self.pool_impl, dtype=self.dtype, name=name)(x, train)
      if name in POOL_AFTER:
        x = pooling.Pool('max', 3, 2, self.pool_impl, name=f'pool{name[0]}')(x)
    x = pooling.global_avg_pool(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    # A Dense on the pooled 1x1xC map: the same 1x1 conv as everywhere else.
    x = nn.Dense(self.num_classes, dtype=self.dtype, name='classifier')(x)
    return x.astype(jnp.float32)
