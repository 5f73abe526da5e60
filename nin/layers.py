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
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
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
