"""bfloat16 compute: its dots accumulate in float32 (the fast CPU path), and it learns as float32 does."""
import functools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax

from configs import nin as nin_config
from nin import data, layers
from nin.train import steps


def _dots(jaxpr):
  yield from (eqn for eqn in jaxpr.eqns if eqn.primitive.name == 'dot_general')
  for sub in jax.extend.core.subjaxprs(jaxpr):
    yield from _dots(sub)


def test_bfloat16_1x1_layers_accumulate_in_float32_forward_and_backward():
  """Every dot of a bfloat16 Conv1x1 and of its gradient takes bfloat16 operands and
  accumulates in float32 (what XLA:CPU runs on its fast low-precision kernels)."""
  layer = layers.Conv1x1(24, dtype=jnp.bfloat16)
  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 16))
  params = layer.init(jax.random.key(1), x)
  loss = lambda p, x: jnp.sum(layer.apply(p, x).astype(jnp.float32) ** 2)
  dots = list(_dots(jax.make_jaxpr(jax.grad(loss, (0, 1)))(params, x).jaxpr))
  assert len(dots) == 3  # Forward, input gradient, kernel gradient.
  for eqn in dots:
    assert [v.aval.dtype for v in eqn.invars] == [jnp.bfloat16] * 2, eqn
    assert eqn.params['preferred_element_type'] == jnp.float32, eqn
  # The values are float32's, to bfloat16 precision.
  ref = layers.Conv1x1(24).apply(params, x)
  np.testing.assert_allclose(layer.apply(params, x).astype(np.float32), ref, rtol=0.05, atol=0.05)
  g16, g32 = (jax.grad(lambda p, m=m: jnp.sum(m.apply(p, x).astype(jnp.float32) ** 2))(params)
              for m in (layer, layers.Conv1x1(24)))
  for a, b in zip(jax.tree.leaves(g16), jax.tree.leaves(g32)):
    assert np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b) > 0.999


def test_bfloat16_learns_as_float32_does_and_agrees_with_it():
  """From one initialisation, NiN (BatchNorm, dropout) fits a batch of real digits in
  bfloat16 as in float32; evaluated in either dtype, the trained net gives the same
  logits to bfloat16 precision."""
  config = nin_config.get_config('digits')
  ds = data.load(config.dataset)
  images = (ds.train_images[:32].astype(np.float32) / 255.0 - 0.5) / 0.25
  labels = ds.train_labels[:32]
  tx = optax.sgd(0.05, momentum=0.9, nesterov=True)
  losses, states = {}, {}
  for dtype in ('float32', 'bfloat16'):
    config.dtype = dtype
    model = steps.model_for(config)
    state = steps.create_train_state(model, tx, images.shape[1:], seed=0)
    step = jax.jit(functools.partial(steps.train_step, dropout_key=jax.random.key(0),
                                     num_classes=ds.num_classes))
    history = []
    for _ in range(30):
      state, m = step(state, images, labels)
      history.append(float(m['loss']))
    losses[dtype], states[dtype] = history, state
  for dtype, history in losses.items():
    assert history[-1] < 0.6 * history[0], (dtype, history)
  # The two runs follow each other step by step.
  assert np.allclose(losses['bfloat16'], losses['float32'], rtol=0.05), losses
  variables = steps.variables_of(states['float32'])
  logits = {}
  for dtype in ('float32', 'bfloat16'):
    config.dtype = dtype
    logits[dtype] = np.asarray(steps.model_for(config).apply(variables, images, train=False),
                               np.float32)
  scale = np.abs(logits['float32']).max()
  assert np.abs(logits['bfloat16'] - logits['float32']).max() < 0.05 * scale
  assert np.mean(logits['bfloat16'].argmax(-1) == logits['float32'].argmax(-1)) >= 0.95
