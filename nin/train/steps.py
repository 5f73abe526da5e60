"""Training and evaluation steps: pure functions of a state and a batch, and their compilation.

    from nin.train import steps
    state = steps.create_train_state(model, tx, (32, 32, 3), seed=0)
    state, metrics = steps.train_step(state, images, labels, dropout_key=key, num_classes=10)

Only jitted code and its compilation live here. The loop that drives them is
nin/train/loop.py, and their passes over a whole split (evaluation, BatchNorm's
statistics) are nin/train/passes.py; evaluation of a saved run
(nin/evaluation/evaluate.py), benchmarks (nin/checks/bench.py) and notebooks use them alone.
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from nin.runtime import distributed
from nin import random_streams, registry


class TrainState(train_state.TrainState):
  batch_stats: Any = None


class LookaheadState(TrainState):
  """A TrainState that also holds lookahead's running average of `variables_of(state)`.

  A class of its own, so that runs without lookahead save exactly the checkpoints
  they always did.
  """
  ema: Any = None


def model_for(config):
  """The model `config` trains, computing in its dtype (parameters stay float32)."""
  dtype = jnp.bfloat16 if config.dtype == 'bfloat16' else jnp.float32
  return registry.build_model(config.model, dtype=dtype)


def create_train_state(model, tx, image_shape, seed: int, fit_images=None, *, fit=None,
                       lookahead: bool = False) -> TrainState:
  """A fresh state; `fit(model, params, fit_images)` sets data-dependent parameters first."""
  variables = model.init(random_streams.key(seed, random_streams.INIT),
                         jnp.zeros((1, *image_shape), jnp.float32))
  params = variables['params']
  if fit is not None:
    params = fit(model, params, fit_images)
  cls = LookaheadState if lookahead else TrainState
  state = cls.create(apply_fn=model.apply, params=params, tx=tx,
                     batch_stats=variables.get('batch_stats'))
  return state.replace(ema=variables_of(state)) if lookahead else state


def variables_of(state):
  """What `model.apply` needs from a state: parameters, and BatchNorm statistics if any."""
  v = {'params': state.params}
  if state.batch_stats is not None:
    v['batch_stats'] = state.batch_stats
  return v


def lookahead_step(state: TrainState, *, every: int, decay: float, total_steps: int):
  """airbench's weight averaging, after the optimizer's step.

  Every `every` steps the average moves towards the current weights (and
  BatchNorm statistics), ema <- ema + (1 - a) (current - ema) with
  a = decay**every * (step / total_steps)**3, and the weights are reset to the
  average; after the last step they are the average. Early in training a is
  near 0 (the average follows the weights); late it nears decay**every.
  """
  step = state.step
  alpha = decay ** every * (step / total_steps) ** 3
  current = variables_of(state)
  sync = step % every == 0
  ema = jax.tree.map(lambda e, p: jnp.where(sync, e + (1 - alpha) * (p - e), e),
                     state.ema, current)
  reset = sync | (step >= total_steps)
  new = jax.tree.map(lambda e, p: jnp.where(reset, e, p), ema, current)
  return state.replace(params=new['params'], batch_stats=new.get('batch_stats'), ema=ema)


def train_step(state: TrainState, images, labels, *, dropout_key, num_classes: int,
               label_smoothing: float = 0.0, lookahead=None):
  """One SGD step (then `lookahead_step(**lookahead)`, if given); returns the new state
  and this step's loss and accuracy."""
  key = jax.random.fold_in(dropout_key, state.step)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {**variables_of(state), 'params': params}, images, train=True,
        rngs={'dropout': key}, mutable=['batch_stats'])
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    return loss, (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads, batch_stats=updates.get('batch_stats'))
  if lookahead is not None:
    state = lookahead_step(state, **lookahead)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return state, {'loss': loss, 'accuracy': accuracy}


def tta_logits(apply, images_nhwc, level: int, logits=None):
  """airbench's test-time augmentation: the mean of logits over views of each image.

  Level 1: the image and its mirror. Level 2: half of that, and half the same
  mean over the image shifted by one pixel up-left and down-right (reflect
  padding), i.e. 6 forward passes. Level 0: the plain logits. `logits`, if
  given, are `apply(images_nhwc)`, already computed.
  """
  logits = apply(images_nhwc) if logits is None else logits
  if level == 0:
    return logits
  mirror = lambda x, plain=None: 0.5 * ((apply(x) if plain is None else plain)
                                        + apply(x[:, :, ::-1]))
  out = mirror(images_nhwc, logits)
  if level >= 2:
    padded = jnp.pad(images_nhwc, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
    shifted = (padded[:, :-2, :-2], padded[:, 2:, 2:])
    out = 0.5 * out + 0.5 * (0.5 * (mirror(shifted[0]) + mirror(shifted[1])))
  return out


def _sums(logits, labels, m, num_classes):
  probs = jax.nn.softmax(logits)
  loss = -jnp.log(jnp.take_along_axis(probs, labels[:, None], -1)[:, 0] + 1e-12)
  preds = jnp.argmax(probs, -1)
  confusion = jax.nn.one_hot(labels, num_classes).T @ (jax.nn.one_hot(preds, num_classes) * m[:, None])
  return {'loss_sum': jnp.sum(loss * m), 'correct': jnp.sum((preds == labels) * m),
          'confusion': confusion}


def eval_step(state: TrainState, images, labels, mask, *, num_classes: int, tta: int = 0):
  """Sums over the unmasked examples: loss, correct predictions, count, confusion;
  with `tta` > 0 the same sums of the test-time-augmented logits, prefixed `tta_`."""
  apply = lambda x: state.apply_fn(variables_of(state), x, train=False)
  m = mask.astype(jnp.float32)
  logits = apply(images)
  out = {**_sums(logits, labels, m, num_classes), 'count': jnp.sum(m)}
  if tta:
    out.update({f'tta_{k}': v for k, v in
                _sums(tta_logits(apply, images, tta, logits), labels, m, num_classes).items()})
  return out


def batch_stats_of(model, state, images):
  """BatchNorm's statistics of one batch under the state's weights (train mode).

  `model` is the state's model with BatchNorm momentum 0, so that the running
  averages it returns are this batch's own mean and variance.
  """
  _, updates = model.apply(variables_of(state), images, train=True, mutable=['batch_stats'],
                           rngs={'dropout': jax.random.key(random_streams.STATS_DROPOUT_KEY)})
  return updates['batch_stats']


def compile_batch_stats(config, mesh):
  """A jitted fn(state, images) -> one batch's BatchNorm statistics, or None if not wanted."""
  if config.bn_stats_batches <= 0:
    return None
  model = model_for(config).clone(bn_momentum=0.0)
  rep, batch = distributed.replicated(mesh), distributed.batch_sharded(mesh)
  return jax.jit(functools.partial(batch_stats_of, model), in_shardings=(rep, batch),
                 out_shardings=rep)


def compile_steps(config, mesh, num_classes, tta=0, total_steps=None):
  """The jitted train and eval steps, with explicit shardings for the mesh.

  `total_steps` is the length of the run, which lookahead's schedule needs.
  """
  rep, batch = distributed.replicated(mesh), distributed.batch_sharded(mesh)
  dropout_key = random_streams.key(config.seed, random_streams.DROPOUT)
  o = config.optimizer
  lookahead = (dict(every=o.lookahead_every, decay=o.lookahead_decay,
                    total_steps=total_steps or 1) if o.lookahead_every > 0 else None)
  step = functools.partial(train_step, dropout_key=dropout_key, num_classes=num_classes,
                           label_smoothing=config.label_smoothing, lookahead=lookahead)
  train_fn = jax.jit(step, in_shardings=(rep, batch, batch), out_shardings=(rep, rep),
                     donate_argnums=0)
  eval_fn = jax.jit(functools.partial(eval_step, num_classes=num_classes, tta=tta),
                    in_shardings=(rep, batch, batch, batch), out_shardings=rep)
  return train_fn, eval_fn


def initial_state_fn(config, model, tx, image_shape, mesh, *, fit_data=True):
  """A jitted fn(seed, fit_images) -> a fresh, replicated TrainState for `config`.

  `fit_data=False` leaves data-fitted parameters (airbench's whitening) at their
  initial values and takes `fit_images=None`: for a state that a checkpoint will
  overwrite, or a benchmark's.
  """
  fit = registry.data_fit(config.model) if fit_data else None
  return jax.jit(functools.partial(create_train_state, model, tx, image_shape, fit=fit,
                                   lookahead=config.optimizer.lookahead_every > 0),
                 static_argnums=0, out_shardings=distributed.replicated(mesh))
