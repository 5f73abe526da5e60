"""The project's claims about 1x1 convolutions, checked numerically."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from nin.layers import batch_norm
from nin import layers

pytestmark = pytest.mark.gpu_path  # Also run under the newer version set (.ci/run).

RTOL = ATOL = 1e-5


def _x(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


@pytest.mark.parametrize('strides', [1, 2])
def test_conv1x1_equals_lax_conv_with_1x1_kernel(strides):
  x = _x((2, 7, 6, 5))
  layer = layers.Conv1x1(4, strides=strides)
  params = layer.init(jax.random.key(1), x)['params']
  chex.assert_shape(params['kernel'], (5, 4))  # nn.Dense's parameters, no spatial axes.
  y = layer.apply({'params': params}, x)
  ref = lax.conv_general_dilated(
      x, params['kernel'].reshape(1, 1, 5, 4), (strides, strides), 'VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + params['bias']
  chex.assert_shape(y, ref.shape)
  chex.assert_trees_all_close(y, ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('strides', [1, 2, 3])
def test_impls_share_parameters_and_outputs(strides):
  x = _x((2, 8, 8, 6))
  trees = {impl: layers.Conv1x1(3, strides=strides, impl=impl).init(jax.random.key(1), x)
           for impl in layers.IMPLS}
  chex.assert_trees_all_equal_shapes(trees['dense'], trees['conv'], trees['einsum'])
  outs = {impl: layers.Conv1x1(3, strides=strides, impl=impl).apply(trees['dense'], x)
          for impl in layers.IMPLS}
  chex.assert_trees_all_close(outs['dense'], outs['conv'], rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(outs['dense'], outs['einsum'], rtol=RTOL, atol=ATOL)


def test_strided_1x1_is_subsample_then_dense():
  x = _x((1, 9, 9, 4))
  layer = layers.Conv1x1(2, strides=2)
  v = layer.init(jax.random.key(1), x)
  dense = nn.Dense(2).apply(v, x[:, ::2, ::2, :])
  chex.assert_trees_all_close(layer.apply(v, x), dense, rtol=RTOL, atol=ATOL)


def test_unknown_impl_is_rejected_with_choices():
  with pytest.raises(ValueError, match=r"'fft'.*dense, conv, einsum"):
    layers.Conv1x1(3, impl='fft').init(jax.random.key(0), _x((1, 2, 2, 3)))


class _Mlp(nn.Module):
  widths: tuple

  @nn.compact
  def __call__(self, v):
    for i, w in enumerate(self.widths):
      v = nn.Dense(w, name=f'l{i}')(v)
      v = nn.relu(v) if i < len(self.widths) - 1 else v
    return v


class _Stack1x1(nn.Module):
  widths: tuple

  @nn.compact
  def __call__(self, x):
    for i, w in enumerate(self.widths):
      x = layers.Conv1x1(w, name=f'l{i}')(x)
      x = nn.relu(x) if i < len(self.widths) - 1 else x
    return x


def test_mlp_is_a_stack_of_1x1_convs_on_a_one_pixel_image():
  v = _x((5, 12))
  widths = (16, 8, 3)
  params = _Mlp(widths).init(jax.random.key(2), v)
  mlp = _Mlp(widths).apply(params, v)
  image = _Stack1x1(widths).apply(params, v.reshape(5, 1, 1, 12))  # The same parameters.
  chex.assert_trees_all_close(image.reshape(5, 3), mlp, rtol=RTOL, atol=ATOL)


def test_fully_connected_layer_is_a_conv_with_a_full_size_kernel():
  h, w, c, out = 4, 5, 3, 7
  x = _x((2, h, w, c))
  dense = nn.Dense(out)
  v = dense.init(jax.random.key(3), x.reshape(2, -1))
  fc = dense.apply(v, x.reshape(2, -1))
  kernel = v['params']['kernel'].reshape(h, w, c, out)  # Row-major flatten order.
  conv = lax.conv_general_dilated(x, kernel, (1, 1), 'VALID',
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  chex.assert_shape(conv, (2, 1, 1, out))
  chex.assert_trees_all_close(conv.reshape(2, out) + v['params']['bias'], fc,
                              rtol=1e-4, atol=1e-5)


def test_linear_1x1_stack_equals_one_1x1_with_the_product_kernel():
  x = _x((2, 5, 5, 6))
  a, b = layers.Conv1x1(9), layers.Conv1x1(4)
  va = a.init(jax.random.key(4), x)
  vb = b.init(jax.random.key(5), a.apply(va, x))
  stacked = b.apply(vb, a.apply(va, x))
  ka, ba = va['params']['kernel'], va['params']['bias']
  kb, bb = vb['params']['kernel'], vb['params']['bias']
  one = layers.Conv1x1(4).apply({'params': {'kernel': ka @ kb, 'bias': ba @ kb + bb}}, x)
  chex.assert_trees_all_close(stacked, one, rtol=RTOL, atol=ATOL)


def test_fold_linear_1x1_into_a_padded_kxk_conv():
  x = _x((2, 6, 6, 3))
  conv = nn.Conv(8, (3, 3), padding='SAME')
  vc = conv.init(jax.random.key(6), x)
  dense = layers.Conv1x1(5)
  vd = dense.init(jax.random.key(7), conv.apply(vc, x))
  k, b = layers.fold_linear_1x1(vc['params']['kernel'], vc['params']['bias'],
                                vd['params']['kernel'], vd['params']['bias'])
  folded = nn.Conv(5, (3, 3), padding='SAME').apply({'params': {'kernel': k, 'bias': b}}, x)
  chex.assert_trees_all_close(folded, dense.apply(vd, conv.apply(vc, x)), rtol=RTOL, atol=ATOL)


def test_1x1_plus_relu_mixes_channels_where_relu_alone_cannot():
  """Why keep a 1x1 conv with C_in filters instead of just a ReLU?"""
  x = jax.nn.relu(_x((1, 1, 1, 6)))  # Input of a 1x1 layer in NiN: already ReLU'd.
  layer = layers.Conv1x1(6)
  v = layer.init(jax.random.key(8), x)
  # ReLU alone after a ReLU is the identity: nothing is learned, no channel mixing.
  chex.assert_trees_all_close(jax.nn.relu(x), x)
  j_relu = jax.jacobian(lambda t: jax.nn.relu(t).ravel())(_x((1, 1, 1, 6), 1)).reshape(6, 6)
  np.testing.assert_array_equal(j_relu, np.diag(np.diag(j_relu)))
  # 1x1 + ReLU: each output map depends on the other channels (off-diagonal Jacobian).
  j_1x1 = jax.jacobian(lambda t: jax.nn.relu(layer.apply(v, t)).ravel())(x).reshape(6, 6)
  off_diagonal = np.asarray(j_1x1) * (1 - np.eye(6))
  assert np.count_nonzero(off_diagonal) > 0
  # And it can still be the identity when that is what training wants.
  eye = {'params': {'kernel': jnp.eye(6), 'bias': jnp.zeros(6)}}
  chex.assert_trees_all_close(jax.nn.relu(layer.apply(eye, x)), x)


@pytest.mark.parametrize('relu', [False, True])
@pytest.mark.parametrize('use_scale', [True, False])
def test_batch_norm_matches_flax_in_values_statistics_and_gradients(relu, use_scale):
  """The hand-written BatchNorm gradient is the derivative of flax's BatchNorm (+ ReLU)."""
  x = jax.random.normal(jax.random.key(0), (4, 5, 5, 6)) * 3.0 + 1.0
  ours = batch_norm.BatchNorm(momentum=0.7, use_scale=use_scale, relu=relu, epsilon=1e-3)
  ref = nn.BatchNorm(False, momentum=0.7, use_scale=use_scale, epsilon=1e-3)
  variables = ours.init(jax.random.key(1), x)
  chex.assert_trees_all_equal_structs(variables, ref.init(jax.random.key(1), x))
  params = jax.tree.map(lambda p: p + jax.random.uniform(jax.random.key(2), p.shape),
                        variables['params'])
  weights = jax.random.normal(jax.random.key(3), x.shape)

  def loss(module, post, params, x):
    y, upd = module.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                          mutable=['batch_stats'])
    return jnp.sum(post(y) * weights), upd

  post = nn.relu if relu else (lambda y: y)
  (l1, s1), g1 = jax.value_and_grad(lambda p, x: loss(ours, lambda y: y, p, x), (0, 1),
                                    has_aux=True)(params, x)
  (l2, s2), g2 = jax.value_and_grad(lambda p, x: loss(
      ref, post, p, x), (0, 1), has_aux=True)(params, x)
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  chex.assert_trees_all_close(s1, s2, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(g1, g2, rtol=1e-4, atol=1e-5)
  # Evaluation mode uses the running averages, as flax's does.
  stats = {'params': params, 'batch_stats': s1['batch_stats']}
  chex.assert_trees_all_close(ours.clone(use_running_average=True).apply(stats, x),
                              post(ref.clone(use_running_average=True).apply(stats, x)),
                              rtol=1e-5, atol=1e-5)
