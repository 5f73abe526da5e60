"""Optimizers and learning-rate schedules from the config, with optax.

Weight decay is applied to kernels only (arrays of rank >= 2), not to biases
or BatchNorm parameters, as is usual for these architectures
(`optimizer.decay_all=True`: every trained parameter, as airbench does);
SGD's decay is coupled (added to the gradient before momentum, as in the
papers' Caffe and PyTorch trainers), AdamW's is decoupled.

Parameters are named by their path in the tree, e.g. `whiten/kernel` or
`group1_bn1/bias`; `optimizer.frozen` and `optimizer.freeze_after` are regular
expressions matched (`re.search`) against these paths.

`optimizer.name='muon'` (Jordan 2024, airbench94_muon): every trained kernel of
rank >= 2 that does not output class scores steps along its orthogonalised
momentum (optax.contrib.scale_by_muon: Newton-Schulz on the kernel as a
(fan_in, fan_out) matrix) at `learning_rate`, after being rescaled to norm
sqrt(fan_out) (`muon_normalize`); every other parameter (biases, BatchNorm,
the classifier) takes the SGD branch at `sgd_learning_rate`. Both follow one
schedule shape. `optimizer.lr_multipliers` ('regex=factor,...') scales the
gradients of the SGD-side parameters it names, before the coupled decay, as
`bn_bias_lr_multiplier` does for normalisation biases.
"""
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

OPTIMIZERS = ('sgd', 'adamw', 'muon')
SCHEDULES = ('constant', 'cosine', 'piecewise', 'onecycle', 'triangle')


def _mask(predicate):
  """An optax mask: predicate(path, flat_tree) for every leaf of a parameter tree.
  A leaf that is no array (optax's MaskedNode, inside another mask) is False."""
  def mask(tree):
    flat = traverse_util.flatten_dict(tree, sep='/')
    return traverse_util.unflatten_dict(
        {k: hasattr(v, 'ndim') and predicate(k, flat) for k, v in flat.items()}, sep='/')
  return mask


def _is_kernel(path, flat):
  return flat[path].ndim >= 2


def _is_norm_bias(path, flat):
  """A bias with no kernel beside it: the shift of a normalisation layer (BatchNorm)."""
  parent = path.rpartition('/')[0]
  return path.endswith('bias') and f'{parent}/kernel' not in flat


def _matches(pattern):
  return lambda path, flat: bool(pattern) and re.search(pattern, path) is not None


def parse_lr_multipliers(text: str) -> list[tuple[str, float]]:
  """'bias$=0.08,head=2' -> [('bias$', 0.08), ('head', 2.0)]; ValueError names a bad pair."""
  pairs = []
  for item in filter(None, (t.strip() for t in text.split(','))):
    pattern, sep, factor = item.rpartition('=')
    try:
      if not (sep and pattern):
        raise ValueError
      re.compile(pattern)
      pairs.append((pattern, float(factor)))
    except (ValueError, re.error):
      raise ValueError(f'optimizer.lr_multipliers item {item!r} is not regex=factor '
                       f'(e.g. "bias$=0.08,head=2")') from None
  return pairs


def _scale_by_path(pairs) -> list[optax.GradientTransformation]:
  """Each leaf times the factor of the first of `pairs` whose pattern its path matches."""
  def first_match(i):
    return lambda path, flat: next(
        (j for j, (pattern, _) in enumerate(pairs) if re.search(pattern, path)), None) == i
  return [optax.masked(optax.scale(f), _mask(first_match(i))) for i, (_, f) in enumerate(pairs)]


def is_muon_kernel(config):
  """Predicate(path, flat) of the kernels Muon steps: rank >= 2, trained, and not the
  classifier (a kernel whose last axis, its outputs, has one entry per class)."""
  frozen = _matches(config.optimizer.frozen)
  classes = config.model.num_classes
  return lambda path, flat: (flat[path].ndim >= 2 and flat[path].shape[-1] != classes
                             and not frozen(path, flat))


def newton_schulz_flops(config, params) -> float:
  """FLOPs of one Muon step's Newton-Schulz iterations (0 for the other optimizers).

  Each kernel Muon steps is a (fan_in, fan_out) matrix X, m x n with m the smaller
  side (optax transposes it so); each of `muon_ns_steps` iterations computes X X^T
  (m*m*n mult-adds), A A (m^3) and B X (m*m*n), at 2 FLOPs per mult-add. Once per
  step, whatever the batch: the training FLOPs count it beside the model's.
  """
  if config.optimizer.name != 'muon':
    return 0.0
  flat = traverse_util.flatten_dict(params, sep='/')
  muon = is_muon_kernel(config)
  macs = 0
  for path, x in flat.items():
    if hasattr(x, 'ndim') and muon(path, flat):
      rows = int(np.prod(x.shape[:-1]))
      m, n = sorted((rows, int(x.shape[-1])))
      macs += 2 * m * m * n + m ** 3
  return 2.0 * config.optimizer.muon_ns_steps * macs


def _as_matrices(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """`inner` on each leaf reshaped to (fan_in, fan_out): an HWIO kernel is the matrix
  of its im2col product. Needs no MuonDimensionNumbers (older optax lacks them)."""
  flat = lambda t: jax.tree.map(lambda x: x.reshape(-1, x.shape[-1]), t)

  def update_fn(updates, state, params=None):
    out, state = inner.update(flat(updates), state, None if params is None else flat(params))
    return jax.tree.map(lambda o, u: o.reshape(u.shape), out, updates), state
  return optax.GradientTransformation(lambda params: inner.init(flat(params)), update_fn)


def _normalize_weights() -> optax.GradientTransformation:
  """Adds what rescales each kernel to Frobenius norm sqrt(fan_out) before its step
  (airbench94_muon: `p *= len(p)**0.5 / p.norm()`, len(p) being PyTorch's C_out)."""
  def update_fn(updates, state, params):
    def one(u, p):
      scale = jnp.sqrt(p.shape[-1]) / jnp.linalg.norm(p.reshape(-1))
      return u + p * (scale - 1)
    return jax.tree.map(one, updates, params), state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def _muon_branch(o, schedule) -> optax.GradientTransformation:
  kwargs = {}
  if 'weight_dimension_numbers' in inspect.signature(optax.contrib.scale_by_muon).parameters:
    # Every leaf is a (fan_in, fan_out) matrix here; optax 0.2.8 needs that said per leaf.
    dims = optax.contrib.MuonDimensionNumbers(reduction_axis=0, output_axis=1)
    kwargs['weight_dimension_numbers'] = lambda tree: jax.tree.map(lambda _: dims, tree)
  parts = [_as_matrices(optax.contrib.scale_by_muon(ns_steps=o.muon_ns_steps,
                                                    beta=o.muon_momentum, nesterov=True,
                                                    **kwargs)),
           optax.scale_by_learning_rate(schedule)]
  if o.muon_normalize:
    parts.append(_normalize_weights())
  return optax.chain(*parts)


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


def _sgd_branch(o, schedule, frozen) -> list[optax.GradientTransformation]:
  parts = []
  if o.bn_bias_lr_multiplier != 1:
    # SGD is linear in the gradient: scaling a gradient before the coupled decay is
    # its learning rate times k with the same effective decay (airbench's BN biases).
    parts.append(optax.masked(optax.scale(o.bn_bias_lr_multiplier), _mask(_is_norm_bias)))
  if o.lr_multipliers:
    parts.extend(_scale_by_path(parse_lr_multipliers(o.lr_multipliers)))
  if o.weight_decay:
    decayed = lambda p, f: (o.decay_all or _is_kernel(p, f)) and not frozen(p, f)
    parts.append(optax.add_decayed_weights(o.weight_decay, mask=_mask(decayed)))
  parts.append(optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov))
  return parts


def make_optimizer(config, schedule: optax.Schedule,
                   steps_per_epoch: int = 1) -> optax.GradientTransformation:
  """`schedule` peaks at `optimizer.learning_rate` (Muon's rate for 'muon')."""
  o = config.optimizer
  frozen = _matches(o.frozen)
  parts = []
  if o.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(o.grad_clip_norm))
  if o.name == 'sgd':
    parts.extend(_sgd_branch(o, schedule, frozen))
  elif o.name == 'adamw':
    decayed = lambda p, f: o.decay_all or _is_kernel(p, f)
    parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                             weight_decay=o.weight_decay, mask=_mask(decayed)))
    if o.bn_bias_lr_multiplier != 1:  # Adam ignores a gradient's scale: scale the update.
      parts.append(optax.masked(optax.scale(o.bn_bias_lr_multiplier), _mask(_is_norm_bias)))
  elif o.name == 'muon':
    ratio = o.sgd_learning_rate / o.learning_rate  # The SGD side on the same schedule shape.
    sgd_schedule = lambda n: ratio * schedule(n)
    muon = is_muon_kernel(config)
    labels = _mask(lambda p, f: 'muon' if muon(p, f) else 'sgd')
    parts.append(optax.multi_transform(
        {'muon': _muon_branch(o, schedule),
         'sgd': optax.chain(*_sgd_branch(o, sgd_schedule, frozen))}, labels))
  else:
    raise ValueError(f'Unknown optimizer {o.name!r}; valid: {", ".join(OPTIMIZERS)}')
  if o.freeze_after:
    last = int(round(o.freeze_after_epochs * steps_per_epoch))
    parts.append(optax.masked(optax.scale_by_schedule(lambda n: (n < last).astype(jnp.float32)),
                              _mask(_matches(o.freeze_after))))
  if o.frozen:
    parts.append(optax.masked(optax.set_to_zero(), _mask(frozen)))
  return optax.chain(*parts)
