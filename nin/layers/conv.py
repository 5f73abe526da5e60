"""Layers: a 1x1 convolution written as a Dense layer over the channel axis.

A 1x1 convolution on an NHWC tensor multiplies every pixel's C_in-vector by
the same (C_in, C_out) matrix: it *is* `nn.Dense` applied over the last axis,
an MLP shared across positions ("cross-channel parametric pooling", Lin et al.
2013). `Conv1x1` is therefore a subclass of `nn.Dense` with the same parameter
tree; `impl` only chooses how the contraction is executed, so the claim can be
checked numerically on whole models and its speed measured.

`ConvUnit` and `MlpConv` build NiN's blocks from it. BatchNorm (with its
gradient written out) is nin/layers/batch_norm.py, airbench's whitening layer
nin/layers/whitening.py and pooling nin/layers/pooling.py; of the project, this module
imports only nin/layers/batch_norm.py.
"""
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from nin.layers.batch_norm import BatchNorm

IMPLS = ('dense', 'conv', 'einsum')

# He et al. 2015 initialisation suits the ReLU networks built here; fan-in
# counts kh*kw*C_in for kxk kernels and C_in for 1x1 kernels alike.
he_normal = nn.initializers.variance_scaling(2.0, 'fan_in', 'truncated_normal')


def _conv_contraction(x, kernel, dimension_numbers, precision=None,
                      preferred_element_type=None, *, strides=1):
  """`lax.dot_general` replacement that runs the contraction as a 1x1 conv."""
  del dimension_numbers  # Always "last axis of x with first axis of kernel".
  return lax.conv_general_dilated(
      x, kernel[None, None], window_strides=(strides, strides),
      padding='VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      precision=precision, preferred_element_type=preferred_element_type)


def _einsum_contraction(x, kernel, dimension_numbers, precision=None,
                        preferred_element_type=None):
  del dimension_numbers
  return jnp.einsum('...c,cd->...d', x, kernel, precision=precision,
                    preferred_element_type=preferred_element_type)


@jax.custom_vjp
def _pixel_dot(x, kernel):
  """x @ kernel over x's last axis, accumulated in float32; its gradient written out.

  Two measured reasons (docs/bench/README.md), both about XLA on the CPU:
  - In bfloat16, XLA hands a dot to YNNPACK's fast low-precision kernels only
    when it takes bfloat16 operands and accumulates in float32; bfloat16 to
    bfloat16 dots, and the mixed float32 x bfloat16 dots that autodiff makes
    of the gradient, run a slower path. So all three dots here take operands
    in the input dtype and accumulate in float32 (a no-op in float32), and
    each result is rounded to that dtype once, as mixed precision does.
  - In every dtype, the kernel gradient is one 2-D dot over all pixels. With
    autodiff's 4-D form XLA fused a transposed write of the cotangent into the
    BatchNorm gradient before it, and the NiN step with BatchNorm ran at two
    thirds of this speed.
  """
  return _dot_f32(x, kernel, ((x.ndim - 1,), (0,))).astype(x.dtype)


def _dot_f32(a, b, contracting):
  return lax.dot_general(a, b, (contracting, ((), ())), preferred_element_type=jnp.float32)


def _pixel_dot_fwd(x, kernel):
  return _pixel_dot(x, kernel), (x, kernel)


def _pixel_dot_bwd(residuals, g):
  x, kernel = residuals
  g = g.astype(x.dtype)
  dx = _dot_f32(g, kernel, ((g.ndim - 1,), (1,))).astype(x.dtype)
  x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  return dx, _dot_f32(x2, g2, ((0,), (0,))).astype(kernel.dtype)


_pixel_dot.defvjp(_pixel_dot_fwd, _pixel_dot_bwd)


def _dense_contraction(x, kernel, dimension_numbers, precision=None,
                       preferred_element_type=None):
  """`lax.dot_general` for the 'dense' impl: see `_pixel_dot`."""
  del dimension_numbers, precision, preferred_element_type  # Last axis of x, first of kernel.
  return _pixel_dot(x, kernel)


class Conv1x1(nn.Dense):
  """A 1x1 convolution on NHWC inputs, as `nn.Dense` over the channel axis.

  Parameters are exactly `nn.Dense`'s: `kernel` (C_in, C_out) and `bias`.
  `strides > 1` subsamples the grid first (a strided 1x1 conv reads only
  every s-th pixel). `impl` picks the contraction: 'dense' (`lax.dot_general`,
  the default), 'conv' (`lax.conv_general_dilated` with the kernel viewed as
  1x1xC_inxC_out) or 'einsum'; all three share one parameter tree. 'dense'
  accumulates in float32 and has a hand-written gradient (`_pixel_dot`).
  """
  strides: int = 1
  impl: str = 'dense'

  def __post_init__(self):
    if self.impl not in IMPLS:
      raise ValueError(f'Unknown 1x1 impl {self.impl!r}; valid: {", ".join(IMPLS)}')
    if self.dot_general is None and self.impl == 'conv':
      object.__setattr__(self, 'dot_general',
                         functools.partial(_conv_contraction, strides=self.strides))
    elif self.dot_general is None and self.impl == 'einsum':
      object.__setattr__(self, 'dot_general', _einsum_contraction)
    elif self.dot_general is None:
      object.__setattr__(self, 'dot_general', _dense_contraction)
    super().__post_init__()

  def __call__(self, x_nhwc):
    if x_nhwc.ndim != 4:
      raise ValueError(f'Conv1x1 expects NHWC inputs, got shape {x_nhwc.shape}')
    if self.strides > 1 and self.impl != 'conv':  # The conv strides itself.
      x_nhwc = x_nhwc[:, ::self.strides, ::self.strides, :]
    return super().__call__(x_nhwc)


class ConvUnit(nn.Module):
  """Convolution, optional BatchNorm, optional ReLU: one "layer" of a model.

  A 1x1 kernel becomes `Conv1x1` (a Dense per pixel); anything larger is
  `nn.Conv` with SAME padding.
  """
  features: int
  kernel_size: int = 1
  strides: int = 1
  use_bn: bool = False
  bn_momentum: float = 0.9  # Running statistics: this times the old plus the rest times the batch's.
  relu: bool = True
  impl: str = 'dense'
  dtype: Any = jnp.float32
  kernel_init: Callable = he_normal
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x, train: bool = False):
    init = dict(kernel_init=self.kernel_init, bias_init=self.bias_init)
    if self.kernel_size == 1:
      x = Conv1x1(self.features, strides=self.strides, impl=self.impl,
                  use_bias=not self.use_bn, dtype=self.dtype, name='conv', **init)(x)
    else:
      k = self.kernel_size
      x = nn.Conv(self.features, (k, k), (self.strides, self.strides),
                  padding='SAME', use_bias=not self.use_bn, dtype=self.dtype,
                  name='conv', **init)(x)
    if self.use_bn:
      return BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       relu=self.relu, dtype=self.dtype, name='bn')(x)
    return nn.relu(x) if self.relu else x


class MlpConv(nn.Module):
  """NiN's mlpconv block: a kxk conv, then 1x1 convs, each followed by ReLU.

  `features[0]` is the kxk conv's width and `features[1:]` the 1x1 widths
  (the "micro network" shared across positions). With `linear_1x1=True` only
  the block's last layer has a ReLU, so the whole block is one kxk conv in
  disguise: see `fold_linear_1x1`. `last_init` (kernel_init, bias_init)
  replaces the initialisers of the block's last layer.
  """
  kernel_size: int
  features: Sequence[int]
  linear_1x1: bool = False
  use_bn: bool = False
  impl: str = 'dense'
  dtype: Any = jnp.float32
  last_init: Any = None
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool = False):
    last = len(self.features) - 1
    for i, f in enumerate(self.features):
      init = {}
      if i == last and self.last_init is not None:
        init = dict(zip(('kernel_init', 'bias_init'), self.last_init))
      x = ConvUnit(f, self.kernel_size if i == 0 else 1, use_bn=self.use_bn,
                   bn_momentum=self.bn_momentum,
                   relu=(i == last) or not self.linear_1x1, impl=self.impl,
                   dtype=self.dtype, name='conv' if i == 0 else f'mlp{i}', **init)(x, train)
    return x


def fold_linear_1x1(kernel_hwio, bias, kernel_1x1, bias_1x1):
  """Folds a linear 1x1 layer into the convolution before it.

  conv(x; K, b) @ W + c == conv(x; K @ W, b @ W + c) at every pixel, border
  pixels included (zero padding adds nothing to either side), so a stack of
  linear 1x1 layers adds parameters but no expressive power.
  """
  kernel = jnp.einsum('hwio,od->hwid', kernel_hwio, kernel_1x1)
  return kernel, bias @ kernel_1x1 + bias_1x1
