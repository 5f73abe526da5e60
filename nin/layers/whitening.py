"""airbench's first layer: a fixed convolution that whitens 2x2 patches (Jordan 2024).

Its filters are set once from training images (`whitening_kernel`, through the
registry's data fit) and never trained; only its bias learns. This module
imports nothing from the project.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import lax


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
