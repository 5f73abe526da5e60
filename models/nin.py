"""Network in Network (Lin, Chen & Yan 2013), CIFAR-10 model, and its ablations.

The paper's model: three mlpconv blocks (5x5 conv 192 -> 1x1 160 -> 1x1 96,
5x5 conv 192 -> 1x1 192 -> 1x1 192, 3x3 conv 192 -> 1x1 192 -> 1x1 10), 3x3/2
max pooling after the first block, 3x3/2 average pooling after the second,
dropout 0.5 after both, global average pooling over the last block's 10 maps
(no fully connected layer). 966,986 parameters with biases.

Ablations, each a different `blocks` / `linear_1x1` (see configs/nin.py):
- blocks='relu_only': every hidden 1x1 layer replaced by "just a ReLU". After
  the conv's own ReLU another ReLU is the identity (relu(relu(x)) = relu(x)), so
  this removes the per-pixel MLP entirely; the classifier 1x1 stays, since
  something must map 192 maps to 10 classes. 'relu_only_matched' narrows
  block 1 to 96 maps, so that every kxk conv reads as many channels as in NiN.
- linear_1x1=True: the 1x1 layers keep their weights but lose their ReLUs.
  Each block is then a single kxk conv in disguise (`fold_linear_nin`).

The head (`head`, the paper's Sec. 4.6 experiment). 'gap': the class scores
are the spatial means of the last block's class maps, no parameters. 'fc':
the paper "replaces the global average pooling layer with a fully connected
layer, while the other parts of the model remain the same", so the same 10
maps (8x8x10 for a 32x32 input) are flattened into a Dense layer to 10
classes, optionally after dropout (`head_dropout_rate`). The paper gives no
further size; a hidden FC layer would be a further change, so there is none.
A fully connected layer over an HxW map is an HxW convolution with VALID
padding (one output pixel), and global average pooling is that convolution
with a fixed kernel, 1/(HW) where input map c meets class c and 0 elsewhere:
`fc_as_conv_kernel` and `gap_as_fc_kernel` below, checked in the tests.
Only GAP leaves a model that runs on any image size (`class_maps` on a
larger canvas gives a map per class); the FC head is tied to the training size.

Initialisation of the class maps. Every layer is He-initialised except the
last one, whose ReLU'd maps are read by global average pooling. The maps
below it are non-negative (ReLU) and strongly correlated across pixels and
images, so a randomly drawn class filter can point away from their common
mean and be negative at every pixel of every image: the class is dead from
step 0 and, behind a ReLU, never gets a gradient (measured on real CIFAR-10
with He init: some class alive on no image at all for 6 of 20 seeds). Without
BatchNorm the class layer therefore starts with a zero kernel and a positive
bias (`class_map_init='zeros'`): every map is alive on every image, logits
start uniform, and the kernel's first gradient is non-zero. With BatchNorm
each map is centred per channel, so roughly half its pixels are positive
whatever the filter, and He init is kept (a zero kernel behind BatchNorm
would divide a zero variance).
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from nin import layers
from nin.layers import pooling

CLASS_MAP_INITS = ('he', 'zeros')
HEADS = ('gap', 'fc')
CLASS_MAP_BIAS = 1.0  # With class_map_init='zeros': the margin every map starts with.

# The block tables, by name: (kernel size, (conv width, 1x1 widths...)) per mlpconv block.
BLOCKS = {
    'paper': ((5, (192, 160, 96)), (5, (192, 192, 192)), (3, (192, 192, 10))),
    'relu_only': ((5, (192,)), (5, (192,)), (3, (192, 10))),
    'relu_only_matched': ((5, (96,)), (5, (192,)), (3, (192, 10))),
}
MIN_WIDTH = 8  # What `width_divisor` leaves at least, so narrow variants stay trainable.


def block_table(blocks, width_divisor: int = 1, num_classes: int = 10):
  """The (kernel size, widths) table that `NiN(blocks, width_divisor)` builds.

  `blocks` is a name in BLOCKS or a table written out (a command-line table
  arrives as text: nin.registry parses it). Hidden widths are
  divided by `width_divisor` (at least MIN_WIDTH); the last layer has one map
  per class, whatever the table says (10 in the paper).
  """
  if isinstance(blocks, str):
    if blocks not in BLOCKS:
      raise ValueError(f'Unknown NiN blocks {blocks!r}; valid: {", ".join(BLOCKS)}, '
                       f'or a table such as {BLOCKS["relu_only"]}')
    blocks = BLOCKS[blocks]
  if not isinstance(width_divisor, int) or width_divisor < 1:
    raise ValueError(f'NiN width_divisor={width_divisor!r} must be a positive integer')
  table = _as_table(blocks)
  if table is None:
    raise ValueError(f'NiN blocks={blocks!r} is not a block table: (kernel size, (conv width, '
                     f'1x1 widths...)) per block, e.g. {BLOCKS["relu_only"]}')
  if width_divisor > 1:
    table = [(k, tuple(max(MIN_WIDTH, w // width_divisor) for w in widths))
             for k, widths in table]
  k, widths = table[-1]
  table[-1] = (k, widths[:-1] + (num_classes,))
  return tuple(table)


def _as_table(blocks):
  """`blocks` as a list of (kernel size, widths) with positive integers, or None."""
  try:
    table = [(k, tuple(widths)) for k, widths in blocks]
  except (TypeError, ValueError):  # Not pairs of a size and a sequence of widths.
    return None
  valid = table and all(isinstance(k, int) and k > 0 and widths and all(
      isinstance(w, int) and w > 0 for w in widths) for k, widths in table)
  return table if valid else None


class NiN(nn.Module):
  """NiN for 32x32 inputs; the last block's last layer has `num_classes` maps."""
  num_classes: int = 10
  blocks: Any = 'paper'       # A name in BLOCKS, or a table (see `block_table`).
  width_divisor: int = 1      # Hidden widths divided by this (the cpu/digits/smoke variants).
  pools: Sequence[str] = ('max', 'avg')
  linear_1x1: bool = False
  dropout_rate: float = 0.5
  use_bn: bool = False
  bn_momentum: float = 0.9  # BatchNorm's running statistics (configs/common.py: fast sets 0.6).
  class_map_init: str = 'zeros'   # 'zeros' applies only without BatchNorm (see above).
  head: str = 'gap'               # gap | fc (see above).
  head_dropout_rate: float = 0.0  # Dropout on the class maps before the 'fc' head.
  impl: str = 'dense'
  pool_impl: str = 'auto'   # How pooling runs: auto | taps | xla (nin/layers/pooling.py).
  dtype: Any = jnp.float32

  def resolved_blocks(self):
    """The block table this model builds (`block_table`), with its pools checked."""
    blocks = block_table(self.blocks, self.width_divisor, self.num_classes)
    pools = tuple(self.pools)
    if len(pools) != len(blocks) - 1 or any(p not in pooling.POOLS for p in pools):
      raise ValueError(f'NiN pools={pools} must name {len(blocks) - 1} pooling(s), one '
                       f'between blocks, each one of {", ".join(pooling.POOLS)}')
    return blocks

  @property
  def batchnorm(self) -> bool:
    """Whether the net normalises its convolutions (reports' recipe tables ask)."""
    return self.use_bn

  @nn.compact
  def __call__(self, x, train: bool = False, return_class_maps: bool = False):
    """Class scores (N, num_classes); with `return_class_maps` also the last block's
    maps (N, H', W', num_classes) that the head reads, H' = H / 4."""
    if self.head not in HEADS:
      raise ValueError(f'Unknown NiN head {self.head!r}; valid: {", ".join(HEADS)}')
    if self.class_map_init not in CLASS_MAP_INITS:
      raise ValueError(f'Unknown class_map_init {self.class_map_init!r}; '
                       f'valid: {", ".join(CLASS_MAP_INITS)}')
    last_init = None
    if self.class_map_init == 'zeros' and not self.use_bn:
      last_init = (nn.initializers.zeros_init(), nn.initializers.constant(CLASS_MAP_BIAS))
    blocks = self.resolved_blocks()
    x = x.astype(self.dtype)
    for i, (k, widths) in enumerate(blocks):
      x = layers.MlpConv(k, tuple(widths), linear_1x1=self.linear_1x1,
                         use_bn=self.use_bn, bn_momentum=self.bn_momentum,
                         impl=self.impl, dtype=self.dtype,
                         last_init=last_init if i == len(blocks) - 1 else None,
                         name=f'block{i + 1}')(x, train)
      if i < len(self.pools):
        x = pooling.Pool(self.pools[i], 3, 2, self.pool_impl, name=f'pool{i + 1}')(x)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    maps_nhwc = x
    if self.head == 'gap':
      logits = pooling.global_avg_pool(maps_nhwc)
    else:
      x = nn.Dropout(self.head_dropout_rate, deterministic=not train)(maps_nhwc)
      logits = nn.Dense(self.num_classes, dtype=self.dtype, name='fc')(
          x.reshape(x.shape[0], -1))
    logits = logits.astype(jnp.float32)
    return (logits, maps_nhwc.astype(jnp.float32)) if return_class_maps else logits


def fc_as_conv_kernel(fc_kernel, map_shape):
  """The 'fc' head's (H*W*C, K) kernel as the (H, W, C, K) kernel of a VALID HxW conv."""
  return fc_kernel.reshape(*map_shape, fc_kernel.shape[-1])


def gap_as_fc_kernel(map_shape):
  """Global average pooling as the kernel of an 'fc' head: 1/(HW) from map c to class c."""
  h, w, c = map_shape
  return jnp.tile(jnp.eye(c) / (h * w), (h * w, 1))


def fold_linear_nin(params):
  """Folds every linear 1x1 layer of a `linear_1x1=True` NiN into its conv.

  Returns `(folded_blocks, folded_params)` for a NiN with no 1x1 layer at all
  whose outputs equal the linear model's: each block becomes one kxk conv of
  the block's output width. The block table is read from the parameters.
  """
  folded_blocks, folded = [], {}
  for i in range(len([name for name in params if name.startswith('block')])):
    block = params[f'block{i + 1}']
    if any('bn' in unit for unit in block.values()):
      raise ValueError('fold_linear_nin needs a model without BatchNorm')
    kernel, bias = block['conv']['conv']['kernel'], block['conv']['conv']['bias']
    for j in range(1, len(block)):
      dense = block[f'mlp{j}']['conv']
      kernel, bias = layers.fold_linear_1x1(kernel, bias, dense['kernel'], dense['bias'])
    folded_blocks.append((kernel.shape[0], (kernel.shape[-1],)))
    folded[f'block{i + 1}'] = {'conv': {'conv': {'kernel': kernel, 'bias': bias}}}
  return tuple(folded_blocks), folded
