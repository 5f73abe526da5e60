"""Pooling: the CPU-tuned taps kernels equal flax's, forward and backward; one switch."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import googlenet as googlenet_config
from configs import nin as nin_config
from nin.layers import pooling
from nin import registry


def _x(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


@pytest.mark.parametrize('shape,stride', [((2, 9, 9, 4), 1), ((2, 9, 8, 3), 2), ((1, 32, 32, 5), 2),
                                          ((2, 7, 10, 3), 2), ((1, 8, 11, 2), 3)])
def test_max_pool_matches_flax_forward_and_gradient(shape, stride):
  x = _x(shape)
  ref = lambda t: nn.max_pool(t, (3, 3), (stride, stride), 'SAME')
  new = lambda t: pooling.max_pool(t, 3, stride, 'taps')
  np.testing.assert_array_equal(new(x), ref(x))
  w = _x(ref(x).shape, 1)
  g_ref = jax.grad(lambda t: (ref(t) * w).sum())(x)
  g_new = jax.grad(lambda t: (new(t) * w).sum())(x)
  chex.assert_trees_all_close(g_new, g_ref, atol=1e-6)


@pytest.mark.parametrize('shape,stride', [((2, 9, 9, 4), 1), ((2, 16, 16, 3), 2),
                                          ((2, 7, 10, 3), 2), ((1, 8, 11, 2), 3)])
def test_avg_pool_matches_flax_forward_and_gradient(shape, stride):
  x = _x(shape)
  ref = lambda t: nn.avg_pool(t, (3, 3), (stride, stride), 'SAME', count_include_pad=False)
  new = lambda t: pooling.avg_pool(t, 3, stride, 'taps')
  chex.assert_trees_all_close(new(x), ref(x), atol=1e-6)
  w = _x(ref(x).shape, 1)
  g_ref = jax.grad(lambda t: (ref(t) * w).sum())(x)
  g_new = jax.grad(lambda t: (new(t) * w).sum())(x)
  chex.assert_trees_all_close(g_new, g_ref, atol=1e-6)


def test_max_pool_gradient_with_ties_goes_to_one_maximum():
  x = jnp.zeros((1, 4, 4, 1))  # All tied, as after a ReLU.
  g = jax.grad(lambda t: pooling.max_pool(t, 3, 1, 'taps').sum())(x)
  assert float(g.sum()) == 16.0 and float(g.max()) <= 16.0


def test_auto_picks_the_taps_on_the_cpu_and_xla_gives_the_same_model():
  assert jax.default_backend() == 'cpu' and pooling.resolve('auto') == 'taps'
  assert pooling.resolve('xla') == 'xla'
  with pytest.raises(ValueError, match="Unknown pooling impl 'cudnn'; valid: auto, taps, xla"):
    pooling.resolve('cudnn')
  x = _x((2, 32, 32, 3))
  for config in (nin_config.get_config('smoke'), googlenet_config.get_config('smoke')):
    model = registry.build_model(config.model)
    variables = model.init(jax.random.key(0), x)
    out = {impl: jax.jit(registry.build_model(config.model, pool_impl=impl).apply)(variables, x)
           for impl in pooling.IMPLS}
    chex.assert_trees_all_close(out['taps'], out['xla'], atol=1e-5)
    chex.assert_trees_all_equal(out['auto'], out['taps'])
