"""Optimizers and learning-rate schedules from the config, with optax.

Weight decay is applied to kernels only (arrays of rank >= 2), not to biases
or BatchNorm scales, as is usual for these architectures; SGD's decay is
coupled (added to the gradient before momentum, as in the papers' Caffe and
PyTorch trainers), AdamW's is decoupled.
"""
import jax
import optax

OPTIMIZERS = ('sgd', 'adamw')
SCHEDULES = ('constant', 'cosine', 'piecewise', 'onecycle')


def _kernels_only(params):
  return jax.tree.map(lambda p: p.ndim >= 2, params)


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
  else:
    raise ValueError(f'Unknown schedule {s.name!r}; valid: {", ".join(SCHEDULES)}')
  if warmup <= 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
  o = config.optimizer
  parts = []
  if o.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(o.grad_clip_norm))
  if o.name == 'sgd':
    if o.weight_decay:
      parts.append(optax.add_decayed_weights(o.weight_decay, mask=_kernels_only))
    parts.append(optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov))
  elif o.name == 'adamw':
    parts.append(optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                             weight_decay=o.weight_decay, mask=_kernels_only))
  else:
    raise ValueError(f'Unknown optimizer {o.name!r}; valid: {", ".join(OPTIMIZERS)}')
  return optax.chain(*parts)
