"""Layers: a 1x1 convolution written as a Dense layer over the channel axis.

A 1x1 convolution on an NHWC tensor multiplies every pixel's C_in-vector by
the same (C_in, C_out) matrix: it *is* `nn.Dense` applied over the last axis,
an MLP shared across positions ("cross-channel parametric pooling", Lin et al.
2013). `Conv1x1` is therefore a subclass of `nn.Dense` with the same parameter
tree; `impl` only chooses how the contraction is executed, so the claim can be
checked numerically on whole models and its speed measured.

Pooling lives in nin/pooling.py. This module imports nothing from the project.
"""
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
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


@jax.custom_vjp
def _pixel_dot(x, kernel):
  """x @ kernel over x's last axis, accumulated in float32; its gradient written out.

  Two measured reasons (README, "Performance"), both about XLA on the CPU:
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


def _moments(x):
  """Per-channel mean and (biased) variance in float32, one pass over x: E[x^2] - E[x]^2."""
  x32 = x.astype(jnp.float32)
  axes = tuple(range(x.ndim - 1))
  mean = jnp.mean(x32, axes)
  return mean, jnp.maximum(jnp.mean(jnp.square(x32), axes) - jnp.square(mean), 0.0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_train(x, scale, bias, epsilon, relu):
  """Training-mode BatchNorm (batch statistics), optionally followed by ReLU.

  Returns (y, batch mean, batch variance). The gradient is written out because
  XLA:CPU's derivative of the textbook form walks the activations several more
  times, and on a CPU these passes over memory, not the convolutions, were most
  of what BatchNorm cost (README, "Performance"): here the forward pass reads x
  twice (statistics, then the affine map) and the backward pass twice (two sums,
  then dx). Gradients flow through y only; the statistics feed running averages.
  """
  return _batch_norm_fwd(x, scale, bias, epsilon, relu)[0]


def _batch_norm_fwd(x, scale, bias, epsilon, relu):
  mean, var = _moments(x)
  inv_std = lax.rsqrt(var + epsilon)
  a = scale * inv_std
  y = x.astype(jnp.float32) * a + (bias - mean * a)
  if relu:
    y = jnp.maximum(y, 0.0)
  return (y.astype(x.dtype), mean, var), (x, scale, bias, mean, inv_std)


def _batch_norm_bwd(epsilon, relu, residuals, cotangents):
  del epsilon
  x, scale, bias, mean, inv_std = residuals
  x_hat = (x.astype(jnp.float32) - mean) * inv_std
  g = cotangents[0].astype(jnp.float32)
  if relu:
    g = jnp.where(x_hat * scale + bias > 0, g, 0.0)
  axes = tuple(range(x.ndim - 1))
  n = x.size // x.shape[-1]
  d_bias = jnp.sum(g, axes)
  d_scale = jnp.sum(g * x_hat, axes)
  dx = (scale * inv_std) * (g - (d_bias + x_hat * d_scale) / n)
  return dx.astype(x.dtype), d_scale, d_bias


batch_norm_train.defvjp(_batch_norm_fwd, _batch_norm_bwd)


class BatchNorm(nn.Module):
  """`nn.BatchNorm` over the channel axis, with the ReLU after it optionally fused.

  The same variables as `nn.BatchNorm` (params `scale`, `bias`; batch_stats
  `mean`, `var`), the same running-average rule and statistics (float32,
  biased variance), so checkpoints and `nin.steps.recompute_batch_stats` see no
  difference; only the gradient is computed by hand (`batch_norm_train`).
  `use_scale=False` fixes the scale at 1 (airbench's BatchNorm).
  """
  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  use_scale: bool = True
  relu: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    scale = (self.param('scale', nn.initializers.ones_init(), (c,), jnp.float32)
             if self.use_scale else jnp.ones((c,), jnp.float32))
    bias = self.param('bias', nn.initializers.zeros_init(), (c,), jnp.float32)
    ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((c,), jnp.float32))
    ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones((c,), jnp.float32))
    x = x.astype(self.dtype or x.dtype)
    if self.use_running_average:
      a = scale * lax.rsqrt(ra_var.value + self.epsilon)
      y = x.astype(jnp.float32) * a + (bias - ra_mean.value * a)
      return (jnp.maximum(y, 0.0) if self.relu else y).astype(x.dtype)
    y, mean, var = batch_norm_train(x, scale, bias, self.epsilon, self.relu)
    if not self.is_initializing():
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y


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


def patch_covariance(images_nhwc, k: int):
  """The (k*k*C, k*k*C) second moment of all kxk patches, ordered (dy, dx, c) like a kernel."""
  x = jnp.asarray(images_nhwc, jnp.float32)
  n, h, w, c = x.shape
  # Each patch, flattened in the order of a flax kernel's (kh, kw, C_in) axes.
  patches = jnp.concatenate([x[:, dy:h - k + 1 + dy, dx:w - k + 1 + dx, :]
                             for dy in range(k) for dx in range(k)], axis=-1)
  patches = patches.reshape(-1, k * k * c)
  return patches.T @ patches / patches.shape[0]


def whitening_kernel(images_nhwc, k: int = 2, eps: float = 5e-4):
  """A (k, k, C, 2*k*k*C) kernel whose filters whiten kxk patches (airbench's first layer).

  Filter j is the j-th eigenvector of the patch second moment (largest
  eigenvalue first) divided by sqrt(eigenvalue + eps); the second half are the
  same filters negated, so that a GELU after them keeps both signs.
  """
  c = images_nhwc.shape[-1]
  eigenvalues, eigenvectors = jnp.linalg.eigh(patch_covariance(images_nhwc, k))
  eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]  # Largest first.
  filters = (eigenvectors / jnp.sqrt(eigenvalues + eps)).reshape(k, k, c, k * k * c)
  return jnp.concatenate([filters, -filters], axis=-1)


class PatchWhitening(nn.Module):
  """A kxk VALID convolution with fixed whitening filters and a trainable bias.

  The kernel is a parameter (so that checkpoints hold it) set from the
  training data by `whitening_kernel`; `stop_gradient` keeps training from
  moving it (the optimizer also leaves it alone: configs freeze it).
  """
  kernel_size: int = 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_nhwc):
    k, c = self.kernel_size, x_nhwc.shape[-1]
    kernel = self.param('kernel', nn.initializers.zeros_init(), (k, k, c, 2 * k * k * c))
    bias = self.param('bias', nn.initializers.zeros_init(), (2 * k * k * c,))
    kernel = lax.stop_gradient(kernel).astype(self.dtype)
    y = lax.conv_general_dilated(x_nhwc.astype(self.dtype), kernel, (1, 1), 'VALID',
                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias.astype(self.dtype)
