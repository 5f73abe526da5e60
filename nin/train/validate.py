"""Config checks that run before anything compiles or touches the workdir.

Each failure is a `ConfigError` whose one-line message names the bad value
and the valid choices.
"""
import math
import re

from nin import data, layers, registry
from nin.runtime import distributed
from nin.train import optim
from nin.data import pipeline, preprocess
from nin.errors import ConfigError
from nin.registry import check_choice

DTYPES = ('float32', 'bfloat16')
TTA_LEVELS = (0, 1, 2)  # nin.train.steps.tta_logits
# (image size, classes, training examples) of each dataset; synthetic takes them from the config.
DATASET_SPECS = {'cifar10': (32, 10, 50_000), 'cifar100': (32, 100, 50_000),
                 'digits': (32, 10, 1_497), 'synthetic': (None, None, None)}


def _check_split(config, n_train: int) -> None:
  """The validation hold-out must leave at least one full training batch."""
  n_val = config.dataset.validation_examples
  if not isinstance(n_val, int) or isinstance(n_val, bool) or not 0 <= n_val < n_train:
    raise ConfigError(f'dataset.validation_examples={n_val!r} must be an integer in [0, '
                      f'{n_train}) for {config.dataset.name} ({n_train} training examples); '
                      f'0 trains on all of them without validation')
  left = n_train - n_val
  if config.dataset.num_train > 0:
    left = min(left, config.dataset.num_train)
  if left < config.batch_size:
    raise ConfigError(f'dataset.validation_examples={n_val} leaves {left} training examples '
                      f'of {config.dataset.name}, fewer than one batch '
                      f'(batch_size={config.batch_size})')


def check_finite(node, prefix='') -> None:
  """No field of the config, at any depth, is nan or infinite: no value means that."""
  for key in node.keys():
    value = node[key]
    if hasattr(value, 'keys'):
      check_finite(value, f'{prefix}{key}.')
    elif isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f'{prefix}{key}={value} must be a finite number')


def validate(config) -> None:
  check_finite(config)
  # Builds the model (its name, arguments and their values are checked there) and reads
  # every field back with the model's own defaults filled.
  model = registry.canonical_model(config.model)
  if 'impl' in model:
    check_choice('model.impl', model['impl'], layers.IMPLS)
  check_choice('dataset name', config.dataset.name, data.DATASETS)
  check_choice('dataset.preprocess', config.dataset.preprocess, preprocess.PREPROCESS)
  if not config.dataset.zca_epsilon > 0:
    raise ConfigError(f'dataset.zca_epsilon={config.dataset.zca_epsilon} must be positive')
  check_choice('optimizer', config.optimizer.name, optim.OPTIMIZERS)
  check_choice('schedule', config.schedule.name, optim.SCHEDULES)
  check_choice('dtype', config.dtype, DTYPES)
  for field in ('batch_size', 'eval_batch_size'):
    distributed.check_batch_size(config[field], field)
  if config.num_train_steps <= 0 and config.num_epochs <= 0:
    raise ConfigError(f'num_epochs={config.num_epochs} must be positive '
                      f'(or set num_train_steps > 0)')
  if not 0 <= config.label_smoothing < 1:
    raise ConfigError(f'label_smoothing={config.label_smoothing} must be in [0, 1)')
  # `not 0 < x` also refuses nan; the bounds are (low, high) with None for unbounded.
  for field, value, low, high in (
      ('optimizer.learning_rate', config.optimizer.learning_rate, 0, math.inf),
      ('log_every_steps', config.log_every_steps, 0, None),
      ('eval_every_epochs', config.eval_every_epochs, 0, None),
      ('keep_checkpoints', config.keep_checkpoints, 0, None)):
    if not (low < value and (high is None or value < high)):
      raise ConfigError(f'{field}={value} must be a positive (finite) number')
  for field in ('crop_padding', 'cutout'):
    if config.dataset[field] < 0:
      raise ConfigError(f'dataset.{field}={config.dataset[field]} must be 0 (off) or positive')
  _check_ranges(config, model)
  _check_fast_fields(config)
  size, classes, n_train = DATASET_SPECS[config.dataset.name]
  size = size or config.dataset.image_size
  classes = classes or config.dataset.synthetic_classes
  n_train = n_train or config.dataset.synthetic_train
  _check_split(config, n_train)
  if config.dataset.image_size != size:
    raise ConfigError(f'dataset.image_size={config.dataset.image_size} does not match '
                      f'{config.dataset.name}, whose images are {size}x{size}')
  if config.model.num_classes != classes:
    raise ConfigError(f'model.num_classes={config.model.num_classes} does not match '
                      f'{config.dataset.name}, which has {classes} classes')
  layout = model.get('layout')
  if layout is not None:
    expected = {'imagenet': 224, 'cifar': 32}.get(layout)
    if expected and size != expected:
      raise ConfigError(f'model.layout={layout!r} expects {expected}x{expected} images, '
                        f'but dataset.image_size={size}')


def _check_fast_fields(config) -> None:
  """The fields of the fast protocol (configs/common.py: fast)."""
  d, o, s = config.dataset, config.optimizer, config.schedule
  check_choice('dataset.pad_mode', d.pad_mode, pipeline.PAD_MODES)
  check_choice('tta', config.tta, TTA_LEVELS)
  if not (isinstance(config.bn_stats_batches, int) and config.bn_stats_batches >= 0):
    raise ConfigError(f'bn_stats_batches={config.bn_stats_batches!r} must be 0 (keep the '
                      f'running averages) or a positive number of training batches')
  if d.alternate_flips and not d.flip:
    raise ConfigError('dataset.alternate_flips=True needs dataset.flip=True (it decides '
                      'when images are mirrored, not whether)')
  if not o.bn_bias_lr_multiplier > 0:
    raise ConfigError(f'optimizer.bn_bias_lr_multiplier={o.bn_bias_lr_multiplier} must be '
                      f'positive')
  if not (isinstance(o.lookahead_every, int) and o.lookahead_every >= 0):
    raise ConfigError(f'optimizer.lookahead_every={o.lookahead_every!r} must be 0 (off) or a '
                      f'positive number of steps')
  if not 0 <= o.lookahead_decay <= 1:
    raise ConfigError(f'optimizer.lookahead_decay={o.lookahead_decay} must be in [0, 1]')
  if not o.freeze_after_epochs >= 0:
    raise ConfigError(f'optimizer.freeze_after_epochs={o.freeze_after_epochs} must be 0 or '
                      f'positive')
  try:
    optim.parse_lr_multipliers(o.lr_multipliers)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  if o.name == 'muon':
    if not (o.sgd_learning_rate > 0 and math.isfinite(o.sgd_learning_rate)):
      raise ConfigError(f'optimizer.sgd_learning_rate={o.sgd_learning_rate} must be a '
                        f'positive (finite) number (muon: the rate of the parameters Muon '
                        f'does not take)')
    if not 0 <= o.muon_momentum < 1:
      raise ConfigError(f'optimizer.muon_momentum={o.muon_momentum} must be in [0, 1)')
    if not (isinstance(o.muon_ns_steps, int) and o.muon_ns_steps > 0):
      raise ConfigError(f'optimizer.muon_ns_steps={o.muon_ns_steps!r} must be a positive '
                        f'number of Newton-Schulz steps')
  for field in ('frozen', 'freeze_after'):
    try:
      re.compile(o[field])
    except re.error as e:
      raise ConfigError(f'optimizer.{field}={o[field]!r} is not a regular expression ({e})')
  for field in ('initial_factor', 'final_factor'):
    if not s[field] >= 0:
      raise ConfigError(f'schedule.{field}={s[field]} must be 0 or positive')


def _check_ranges(config, model: dict) -> None:
  """Values outside the range where they mean anything (each is refused, not clipped).
  `model`: the model's fields with its defaults filled (a net without a field has no
  such value to check)."""
  o, s = config.optimizer, config.schedule
  unit = '[0, 1)'
  for field, value, ok, valid in (
      ('optimizer.momentum', o.momentum, 0 <= o.momentum < 1, unit),
      ('optimizer.weight_decay', o.weight_decay, o.weight_decay >= 0, '0 or positive'),
      ('optimizer.b1', o.b1, 0 <= o.b1 < 1, unit),
      ('optimizer.b2', o.b2, 0 <= o.b2 < 1, unit),
      ('optimizer.eps', o.eps, o.eps > 0, 'positive'),
      ('optimizer.grad_clip_norm', o.grad_clip_norm, o.grad_clip_norm >= 0, '0 (off) or positive'),
      ('schedule.warmup_epochs', s.warmup_epochs, s.warmup_epochs >= 0, '0 or positive'),
      ('schedule.decay_factor', s.decay_factor, s.decay_factor > 0, 'positive'),
      *((f'model.{f}', model[f], 0 <= model[f] < 1, unit)
        for f in ('dropout_rate', 'head_dropout_rate') if f in model)):
    if not ok:  # `not ok` also refuses nan.
      raise ConfigError(f'{field}={value} must be {"in " if valid == unit else ""}{valid}')
  if config.dataset.crop_padding >= config.dataset.image_size:
    raise ConfigError(f'dataset.crop_padding={config.dataset.crop_padding} must be smaller than '
                      f'the image ({config.dataset.image_size} pixels)')
