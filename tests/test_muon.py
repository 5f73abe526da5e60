"""Muon (optimizer.name='muon', nin/train/optim.py) and airbench94_muon's recipe (configs/plain.py)."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from configs import common
from configs import googlenet as googlenet_config
from configs import nin as nin_config
from configs import plain as plain_config
from nin import errors, registry
from nin.train import optim
from nin.train.validate import validate

pytestmark = pytest.mark.gpu_path  # Also run under the newer version set (.ci/run).


def _reference_newton_schulz(g, steps=3):
  """airbench94_muon.py's zeropower_via_newtonschulz5, in float64 numpy, on a
  (fan_in, fan_out) matrix (its PyTorch kernels are (C_out, C_in*k*k): the transpose,
  which the iteration maps to the transpose)."""
  a, b, c = 3.4445, -4.7750, 2.0315
  x = np.asarray(g, np.float64)
  x = x / (np.linalg.norm(x) + 1e-7)
  transposed = x.shape[0] > x.shape[1]
  if transposed:
    x = x.T
  for _ in range(steps):
    m = x @ x.T
    x = a * x + (b * m + c * m @ m) @ x
  return x.T if transposed else x


def _muon_config(**fields):
  c = common.get_base_config()
  c.optimizer.name = 'muon'
  c.optimizer.learning_rate = 0.24
  c.optimizer.sgd_learning_rate = 0.5
  c.optimizer.momentum = 0.85
  c.optimizer.weight_decay = 0.0
  for k, v in fields.items():
    c.optimizer[k] = v
  return c


def _params_and_grads(seed=0):
  keys = iter(jax.random.split(jax.random.PRNGKey(seed), 8))
  normal = lambda shape: jax.random.normal(next(keys), shape)
  params = {'conv': {'kernel': normal((3, 3, 4, 6))},       # 36 x 6: transposed for NS.
            'mlp': {'kernel': normal((6, 8)), 'bias': normal((8,))},
            'classifier': {'kernel': normal((8, 10))}}       # 10 outputs: the classes.
  grads = jax.tree.map(lambda p: normal(p.shape), params)
  return params, grads


def test_one_muon_step_is_the_originals_normalise_then_orthogonalised_step():
  params, grads = _params_and_grads()
  tx = optim.make_optimizer(_muon_config(), optax.constant_schedule(0.24))
  updates, _ = tx.update(grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  for name in ('conv', 'mlp'):
    p, g = np.asarray(params[name]['kernel'], np.float64), np.asarray(grads[name]['kernel'])
    fan_out = p.shape[-1]
    # First step: the original's Nesterov buffer g + 0.6 g is parallel to g, as optax's is.
    ortho = _reference_newton_schulz(g.reshape(-1, fan_out)).reshape(p.shape)
    expected = p * np.sqrt(fan_out) / np.linalg.norm(p) - 0.24 * ortho
    np.testing.assert_allclose(new[name]['kernel'], expected, rtol=2e-4, atol=2e-5)
  # The classifier and the bias take Nesterov SGD at sgd_learning_rate: (1 + 0.85) g.
  for name, leaf in (('classifier', 'kernel'), ('mlp', 'bias')):
    np.testing.assert_allclose(updates[name][leaf], -0.5 * 1.85 * grads[name][leaf], rtol=1e-5)


def test_muon_kernels_are_rescaled_to_norm_sqrt_fan_out_only_when_asked():
  params, grads = _params_and_grads(1)
  zero = jax.tree.map(jnp.zeros_like, grads)
  for normalize in (True, False):
    tx = optim.make_optimizer(_muon_config(muon_normalize=normalize), optax.constant_schedule(0.24))
    new = optax.apply_updates(params, tx.update(zero, tx.init(params), params)[0])
    norm = float(jnp.linalg.norm(new['conv']['kernel']))
    before = float(jnp.linalg.norm(params['conv']['kernel']))
    assert norm == pytest.approx(np.sqrt(6) if normalize else before, rel=1e-5)


def _muon_paths(config):
  model = registry.build_model(config.model)
  # Shapes are all the rule reads: no weights are computed.
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))['params']
  flat = traverse_util.flatten_dict(params, sep='/')
  is_muon = optim.is_muon_kernel(config)
  return {k for k in flat if is_muon(k, flat)}, set(flat)


@pytest.mark.parametrize('module,arg,left_to_sgd', [
    (plain_config, 'airbench_muon', {'head/kernel', 'whiten/kernel'}),
    (nin_config, 'fast,muon', {'block3/mlp2/conv/kernel'}),
    (plain_config, 'fast,muon', {'classifier/conv/kernel'}),
    (googlenet_config, 'fast,muon', {'classifier/kernel'}),
])
def test_muon_takes_every_hidden_kernel_and_leaves_the_classifier_to_sgd(module, arg, left_to_sgd):
  config = module.get_config(arg)
  muon, every = _muon_paths(config)
  kernels = {k for k in every if k.endswith('kernel')}
  assert muon == kernels - left_to_sgd
  assert not any(k.endswith(('bias', 'scale')) for k in muon)


def test_lr_multipliers_scale_the_gradients_they_name_before_the_decay():
  c = common.get_base_config()
  c.optimizer.momentum, c.optimizer.weight_decay, c.optimizer.decay_all = 0.0, 0.1, True
  params = {'a': {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones((2,))}}
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)

  def step(multipliers):
    c.optimizer.lr_multipliers = multipliers
    tx = optim.make_optimizer(c, optax.constant_schedule(1.0))
    return tx.update(grads, tx.init(params), params)[0]

  plain, scaled = step(''), step('bias$=3,a/=7')
  np.testing.assert_allclose(plain['a']['bias'], -(0.5 + 0.1))
  np.testing.assert_allclose(scaled['a']['bias'], -(3 * 0.5 + 0.1))   # First match wins.
  np.testing.assert_allclose(scaled['a']['kernel'], -(7 * 0.5 + 0.1))


@pytest.mark.parametrize('field,value,message', [
    ('lr_multipliers', 'bias', "optimizer.lr_multipliers item 'bias' is not regex=factor"),
    ('lr_multipliers', '(=2', "optimizer.lr_multipliers item '(=2' is not regex=factor"),
    ('lr_multipliers', 'bias=x', "optimizer.lr_multipliers item 'bias=x' is not regex=factor"),
    ('muon_momentum', 1.0, 'optimizer.muon_momentum=1.0 must be in [0, 1)'),
    ('muon_ns_steps', 0, 'optimizer.muon_ns_steps=0 must be a positive'),
    ('sgd_learning_rate', 0.0, 'optimizer.sgd_learning_rate=0.0 must be a positive'),
])
def test_bad_muon_fields_are_refused_before_anything_runs(field, value, message):
  config = nin_config.get_config('fast,muon,smoke')
  config.optimizer[field] = value
  with pytest.raises(errors.ConfigError, match=re.escape(message)):
    validate(config)


def test_muon_is_an_option_of_the_fast_protocol_only():
  with pytest.raises(ValueError, match='muon needs fast'):
    nin_config.get_config('muon')
  sgd, muon = nin_config.get_config('fast'), nin_config.get_config('fast,muon')
  assert muon.optimizer.sgd_learning_rate == sgd.optimizer.learning_rate
  assert (muon.schedule, muon.batch_size, muon.num_epochs) == (sgd.schedule, sgd.batch_size,
                                                               sgd.num_epochs)


def test_airbench_muon_states_the_originals_rates_per_mean_loss():
  """airbench94_muon sums its loss over 2000 images: SGD rates 0.67 (head) and 0.053
  (biases), a decay of 2e-6 x 2000 per step on each, Muon at 0.24."""
  c = plain_config.get_config('airbench_muon')
  o, batch = c.optimizer, c.batch_size
  assert batch == 2000 and c.num_epochs == 8 and o.learning_rate == 0.24
  assert o.sgd_learning_rate / batch == pytest.approx(0.67)
  (pattern, factor), = optim.parse_lr_multipliers(o.lr_multipliers)
  assert pattern == 'bias$' and o.sgd_learning_rate * factor / batch == pytest.approx(0.053, rel=1e-3)
  assert o.sgd_learning_rate * o.weight_decay == pytest.approx(2e-6 * batch)
  assert o.lookahead_every == 0 and c.schedule.warmup_epochs == 0 and c.schedule.final_factor == 0
  assert c.model.head_init == 'unit' and c.model.logit_scale == 1 / 256


def test_newton_schulz_flops_count_each_hidden_kernel_once_per_iteration():
  from configs import nin as nin_config
  from nin.train import optim
  config = nin_config.get_config('fast,muon')
  config.optimizer.muon_ns_steps = 3
  params = {'conv': {'kernel': np.zeros((3, 3, 4, 8))},    # 36 x 8: m = 8, n = 36.
            'mlp': {'kernel': np.zeros((8, 16)), 'bias': np.zeros(16)},  # m = 8, n = 16.
            'head': {'kernel': np.zeros((16, 10))}}          # The classifier: SGD's.
  per_iteration = (2 * 8 * 8 * 36 + 8 ** 3) + (2 * 8 * 8 * 16 + 8 ** 3)
  assert optim.newton_schulz_flops(config, params) == 2 * 3 * per_iteration
  config.optimizer.name = 'sgd'
  assert optim.newton_schulz_flops(config, params) == 0

