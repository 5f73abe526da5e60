"""BatchNorm over the channel axis with its gradient written out, and the ReLU after it fused.

The same variables, statistics and running-average rule as `flax.linen.BatchNorm`
(tests/test_layers.py checks values, running averages and gradients against it);
only the gradient is computed by hand (docs/bench/README.md says why). This
module imports nothing from the project.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


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
  of what BatchNorm cost (docs/bench/README.md): here the forward pass reads x
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
  biased variance), so checkpoints and `nin.train.passes.recompute_batch_stats` see no
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
