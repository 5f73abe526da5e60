"""Layers: a 1x1 convolution written as a Dense layer over the channel axis.

A 1x1 convolution on an NHWC tensor multiplies every pixel's C_in-vector by
the same (C_in, C_out) matrix: it *is* `nn.Dense` applied over the last axis,
an MLP shared across positions ("cross-channel parametric pooling", Lin et al.
2013). `Conv1x1` is therefore a subclass of `nn.Dense` with the same parameter
tree; `impl` only chooses how the contraction is executed, so the claim can be
checked numerically on whole models and its speed measured.

This module imports nothing from the project.
"""
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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


class Conv1x1(nn.Dense):
  """A 1x1 convolution on NHWC inputs, as `nn.Dense` over the channel axis.

  Parameters are exactly `nn.Dense`'s: `kernel` (C_in, C_out) and `bias`.
  `strides > 1` subsamples the grid first (a strided 1x1 conv reads only
  every s-th pixel). `impl` picks the contraction: 'dense' (`lax.dot_general`,
  the default), 'conv' (`lax.conv_general_dilated` with the kernel viewed as
  1x1xC_inxC_out) or 'einsum'; all three share one parameter tree.
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
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       dtype=self.dtype, name='bn')(x)
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

  @nn.compact
  def __call__(self, x, train: bool = False):
    last = len(self.features) - 1
    for i, f in enumerate(self.features):
      init = {}
      if i == last and self.last_init is not None:
        init = dict(zip(('kernel_init', 'bias_init'), self.last_init))
      x = ConvUnit(f, self.kernel_size if i == 0 else 1, use_bn=self.use_bn,
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


def _same_padding(size, window, stride):
  out = -(-size // stride)
  total = max((out - 1) * stride + window - size, 0)
  return out, (total // 2, total - total // 2)


def _pool_windows(x, window, stride, pad_value):
  """The window*window strided views of the padded input, one per tap."""
  n, h, w, c = x.shape
  (oh, ph), (ow, pw) = _same_padding(h, window, stride), _same_padding(w, window, stride)
  xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=pad_value)
  for dy in range(window):
    for dx in range(window):
      yield lax.slice(xp, (0, dy, dx, 0),
                      (n, dy + (oh - 1) * stride + 1, dx + (ow - 1) * stride + 1, c),
                      (1, stride, stride, 1))


def _scatter_taps(tap_grad, operands, window, stride, in_shape, dtype):
  """The transpose of `_pool_windows`: sums each tap's gradient back onto the input grid.

  `operands` are output-shaped (array, fill value) pairs; `tap_grad(k, *slices)`
  gives tap k's gradient from the operands' slices for that tap. Input row i of the padded grid is
  tap dy of output row o when i = o*s + dy. Split the rows (and columns) into
  residue classes i % s: within class r, row q gets tap dy (dy % s == r) from
  output row q - dy // s. Every tap is then a plain slice of one padded copy of
  the operands, so all taps fuse into one loop per class; the s*s classes
  interleave back with a reshape. (Padding the gradient once per tap, the obvious
  transpose of the strided slices, runs 3.5x slower on CPU.)
  """
  n, h, w, c = in_shape
  s = stride
  (oh, ph), (ow, pw) = _same_padding(h, window, s), _same_padding(w, window, s)
  qh, qw = -(-(h + sum(ph)) // s), -(-(w + sum(pw)) // s)  # Rows, columns per class.
  lo = (window - 1) // s
  pads = ((0, 0, 0), (lo, qh - oh, 0), (lo, qw - ow, 0), (0, 0, 0))
  padded = [lax.pad(a, jnp.asarray(fill, a.dtype), pads) for a, fill in operands]
  classes = [[jnp.zeros((n, qh, qw, c), dtype)] * s for _ in range(s)]
  for k in range(window * window):
    dy, dx = divmod(k, window)
    start = (0, lo - dy // s, lo - dx // s, 0)
    limit = (n, start[1] + qh, start[2] + qw, c)
    term = tap_grad(k, *(lax.slice(a, start, limit) for a in padded))
    classes[dy % s][dx % s] = classes[dy % s][dx % s] + term
  grad = jnp.stack([jnp.stack(row, 3) for row in classes], 2)  # (n, qh, s, qw, s, c)
  grad = grad.reshape(n, qh * s, qw * s, c)
  return grad[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w, :]


def _max_pool_fwd(x, window, stride):
  best = arg = None
  for k, view in enumerate(_pool_windows(x, window, stride, -jnp.inf)):
    if best is None:
      best, arg = view, jnp.zeros(view.shape, jnp.int8)
    else:
      better = view > best  # Ties go to the first tap in row-major order.
      best, arg = jnp.where(better, view, best), jnp.where(better, jnp.int8(k), arg)
  return best, (arg, x.shape)


def _max_pool_bwd(window, stride, residuals, g):
  arg, in_shape = residuals
  zero = jnp.zeros((), g.dtype)
  def tap(k, g_k, arg_k):  # The gradient goes to each window's stored argmax.
    return jnp.where(arg_k == k, g_k, zero)
  return (_scatter_taps(tap, [(g, 0), (arg, -1)], window, stride, in_shape, g.dtype),)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(x_nhwc, window: int, stride: int):
  """SAME max pooling whose gradient scatters to the stored argmax of each window.

  Equal to `nn.max_pool(x, (w, w), (s, s), 'SAME')`, forward and backward (up
  to which of tied maxima receives the gradient). XLA's own gradient of
  `reduce_window` (select-and-scatter) is slow on CPU: for GoogLeNet's 3x3
  stride-1 pools, this one is about 7x faster (README, "Performance").
  """
  return _max_pool_fwd(x_nhwc, window, stride)[0]


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


class MaxPool(nn.Module):
  """SAME max pooling as a module, so that summaries list it as a layer."""
  window: int = 3
  strides: int = 2

  def __call__(self, x):
    return max_pool(x, self.window, self.strides)


def _window_counts(h, w, window, stride):
  """How many real (not padding) pixels each SAME window covers, as (1, oh, ow, 1)."""
  (oh, ph), (ow, pw) = _same_padding(h, window, stride), _same_padding(w, window, stride)
  ones = np.pad(np.ones((h, w), np.float32), (ph, pw))
  counts = sum(ones[dy:dy + (oh - 1) * stride + 1:stride, dx:dx + (ow - 1) * stride + 1:stride]
               for dy in range(window) for dx in range(window))
  return counts[None, :, :, None]


def _avg_pool_fwd(x, window, stride):
  counts = _window_counts(x.shape[1], x.shape[2], window, stride)
  return sum(_pool_windows(x, window, stride, 0)) / counts.astype(x.dtype), x.shape


def _avg_pool_bwd(window, stride, in_shape, g):
  g = g / _window_counts(in_shape[1], in_shape[2], window, stride).astype(g.dtype)
  return (_scatter_taps(lambda k, g_k: g_k, [(g, 0)], window, stride, in_shape, g.dtype),)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def avg_pool(x_nhwc, window: int, stride: int):
  """SAME average pooling over the real pixels only (padding excluded, as in Caffe's NiN).

  Equal to `nn.avg_pool(x, (w, w), (s, s), 'SAME', count_include_pad=False)`;
  forward and backward are the same strided slices as `max_pool`, which XLA's
  CPU backend runs faster than `reduce_window` and its gradient.
  """
  return _avg_pool_fwd(x_nhwc, window, stride)[0]


avg_pool.defvjp(_avg_pool_fwd, _avg_pool_bwd)


class AvgPool(nn.Module):
  """Average pooling as a module (padding excluded from the mean, as in Caffe's NiN)."""
  window: int = 3
  strides: int = 2

  def __call__(self, x):
    return avg_pool(x, self.window, self.strides)


def global_avg_pool(x_nhwc):
  return jnp.mean(x_nhwc, axis=(1, 2))
