"""Optimizers and learning-rate schedules from the config, with optax.

Weight decay is applied to kernels only (arrays of rank >= 2), not to biases
or BatchNorm parameters, as is usual for these architectures
(`optimizer.decay_all=True`: every trained parameter, as airbench does);
SGD's decay is coupled (added to the gradient before momentum, as in the
papers' Caffe and PyTorch trainers), AdamW's is decoupled.

Parameters are named by their path in the tree, e.g. `whiten/kernel` or
`group1_bn1/bias`; `optimizer.frozen` and `optimizer.freeze_after` are regular
expressions matched (`re.search`) against these paths.
"""
import re

import jax.numpy as jnp
import optax
from flax import traverse_util

OPTIMIZERS = ('sgd', 'adamw')
SCHEDULES = ('constant', 'cosine', 'piecewise', 'onecycle', 'triangle')


def _mask(predicate):
  """An optax mask: predicate(path, flat_tree) for every leaf of a parameter tree."""
  def mask(tree):
    flat = traverse_util.flatten_dict(tree, sep='/')
    return traverse_util.unflatten_dict({k: predicate(k, flat) for k in flat}, sep='/')
  return mask


def _is_kernel(path, flat):
  return flat[path].ndim >= 2


def _is_norm_bias(path, flat):
  """A bias with no kernel beside it: the shift of a normalisation layer (BatchNorm)."""
  parent = path.rpartition('/')[0]
  return path.endswith('bias') and f'{parent}/kernel' not in flat


def _matches(pattern):
  return lambda path, flat: bool(pattern) and re.search(pattern, path) is not None


def _warmup_start(config):
  return config.schedule.initial_factor * config.optimizer.learning_rate


def make_schedule(config, steps_per_epoch: int, total_steps: int) -> optax.Schedule:
  s, lr = config.schedule, config.optimizer.learning_rate
  warmup = min(int(round(s.warmup_epochs * steps_per_epoch)), total_steps - 1)
  if s.name == 'constant':
    main = optax.constant_schedule(lr)
  elif s.name == 'cosine':
    main = optax.cosine_decay_schedule(lr, max(1, total_steps - warmup))
  elif s.name == 'piecewise':
    # Boundaries <= 1 are fractions of training; larger ones are epochs.
    steps = [int(b * total_steps) if b <= 1 else int(b * steps_per_epoch)
             for b in s.boundaries_epochs]
    main = optax.piecewise_constant_schedule(
        lr, {max(1, b - warmup): s.decay_factor for b in steps})
  elif s.name == 'onecycle':
    return optax.cosine_onecycle_schedule(total_steps, lr)  # Has its own warmup.
  elif s.name == 'triangle':  # airbench's: linear up to the peak, linear down to final_factor.
    main = optax.linear_schedule(lr, s.final_factor * lr, max(1, total_steps - warmup))
  else:
    raise ValueError(f'Unknown schedule {s.name!r}; valid: {", ".join(SCHEDULES)}')
  if warmup <= 0:
    return main
  return optax.join_schedules([optax.linear_schedule(_warmup_start(config), lr, warmup), main],
                              [warmup])


def make_optimizer(config, schedule: optax.Schedule,
                   steps_per_epoch: int = 1) -> optax.GradientTransformation:
  o = config.optimizer
  frozen = _matches(o.frozen)
  parts = []
  if o.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(o.grad_clip_norm))
  if o.name == 'sgd':
    if o.bn_bias_lr_multiplier != 1:
      # SGD is linear in the gradient: scaling a gradient before the coupled decay is
      # its learning rate times k with the same effective decay (airbench's BN biases).
      parts.append(optax.masked(optax.scale(o.bn_bias_lr_multiplier), _mask(_is_norm_bias)))
    if o.weight_decay:
      decayed = lambda p, f: (o.decay_all or _is_kernel(p, f)) and not frozen(p, f)
      parts.append(optax.add_decayed_weights(o.weight_decay, mask=_mask(decayed)))
    parts.append(optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov))
  elif o.name == 'adamw':
    decayed = lambda p, f: o.decay_all or _is_kernel(p, f)
    parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                             weight_decay=o.weight_decay, mask=_mask(decayed)))
    if o.bn_bias_lr_multiplier != 1:  # Adam ignores a gradient's scale: scale the update.
      parts.append(optax.masked(optax.scale(o.bn_bias_lr_multiplier), _mask(_is_norm_bias)))
  else:
    raise ValueError(f'Unknown optimizer {o.name!r}; valid: {", ".join(OPTIMIZERS)}')
  if o.freeze_after:
    last = int(round(o.freeze_after_epochs * steps_per_epoch))
    parts.append(optax.masked(optax.scale_by_schedule(lambda n: (n < last).astype(jnp.float32)),
                              _mask(_matches(o.freeze_after))))
  if o.frozen:
    parts.append(optax.masked(optax.set_to_zero(), _mask(frozen)))
  return optax.chain(*parts)
