"""A 3x3-only baseline: no 1x1 layer anywhere.

VGG-style stages of 3x3 convs with ReLU, a 3x3/2 max pool between stages
(the same pooling NiN uses), and a last 3x3 conv with one map per class
followed by global average pooling, as in NiN, so even the classifier is not
a 1x1 layer. Dropout after each pool, as in NiN.

How the sizes in configs/plain.py were chosen (figures from
`python -m nin.summary`), so that the comparison is fair:
- base: widths 64/128/224 with 2+2+2 convs: 990K parameters, within 3% of
  NiN's 966,986, at 0.14 G multiply-adds per image (NiN: 0.22 G). Matching
  parameters rather than multiply-adds asks the sharper question: with the
  same budget of weights, do 1x1 layers buy accuracy?
- large: widths 128/256/512 with 2+2+3 convs: 7.0M parameters and 0.76 G
  multiply-adds, the size class of the CIFAR GoogLeNet (5.9M, 1.45 G).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from nin import layers, pooling

class Plain(nn.Module):
  num_classes: int = 10
  stages: Sequence[Sequence[int]] = ((64, 64), (128, 128), (224, 224))
  dropout_rate: float = 0.3
  use_bn: bool = False
  dtype: Any = jnp.float32
  impl: str = 'dense'  # Accepted for a uniform interface; there is no 1x1 layer.
  pool_impl: str = 'auto'   # How pooling runs: auto | taps | xla (nin/pooling.py).

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.astype(self.dtype)
    for s, widths in enumerate(self.stages):
      for j, f in enumerate(widths):
        x = layers.ConvUnit(f, 3, use_bn=self.use_bn, dtype=self.dtype,
                            name=f'conv{s + 1}_{j + 1}')(x, train)
      if s < len(self.stages) - 1:
        x = pooling.Pool('max', 3, 2, self.pool_impl, name=f'pool{s + 1}')(x)
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = layers.ConvUnit(self.num_classes, 3, relu=False, dtype=self.dtype,
                        name='classifier')(x, train)
    return pooling.global_avg_pool(x).astype(jnp.float32)
