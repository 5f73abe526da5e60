"""Config checks that run before anything compiles or touches the workdir.

Each failure is a `ConfigError` whose one-line message names the bad value
and the valid choices.
"""
import jax

from nin import data, layers, optim, registry
from nin.registry import ConfigError, check_choice

DTYPES = ('float32', 'bfloat16')
# (image size, classes) of each dataset; synthetic takes its size from the config.
DATASET_SPECS = {'cifar10': (32, 10), 'cifar100': (32, 100), 'digits': (32, 10),
                 'synthetic': (None, None)}


def validate(config) -> None:
  check_choice('model name', config.model.name, registry.MODELS)
  check_choice('model.impl', config.model.get('impl', 'dense'), layers.IMPLS)
  registry.build_model(config.model)  # Unknown model arguments.
  check_choice('dataset name', config.dataset.name, data.DATASETS)
  check_choice('optimizer', config.optimizer.name, optim.OPTIMIZERS)
  check_choice('schedule', config.schedule.name, optim.SCHEDULES)
  check_choice('dtype', config.dtype, DTYPES)
  n = jax.device_count()
  for field in ('batch_size', 'eval_batch_size'):
    value = config[field]
    if not isinstance(value, int) or value <= 0 or value % n:
      raise ConfigError(f'{field}={value} must be a positive multiple of the device count '
                        f'({n} device{"s" if n > 1 else ""})')
  if config.num_train_steps <= 0 and config.num_epochs <= 0:
    raise ConfigError(f'num_epochs={config.num_epochs} must be positive '
                      f'(or set num_train_steps > 0)')
  if not 0 <= config.label_smoothing < 1:
    raise ConfigError(f'label_smoothing={config.label_smoothing} must be in [0, 1)')
  if config.optimizer.learning_rate <= 0:
    raise ConfigError(f'optimizer.learning_rate={config.optimizer.learning_rate} must be positive')
  size, classes = DATASET_SPECS[config.dataset.name]
  size = size or config.dataset.image_size
  classes = classes or config.dataset.synthetic_classes
  if config.dataset.image_size != size:
    raise ConfigError(f'dataset.image_size={config.dataset.image_size} does not match '
                      f'{config.dataset.name}, whose images are {size}x{size}')
  if config.model.num_classes != classes:
    raise ConfigError(f'model.num_classes={config.model.num_classes} does not match '
                      f'{config.dataset.name}, which has {classes} classes')
  layout = config.model.get('layout')
  if layout is not None:
    expected = {'imagenet': 224, 'cifar': 32}.get(layout)
    if expected and size != expected:
      raise ConfigError(f'model.layout={layout!r} expects {expected}x{expected} images, '
                        f'but dataset.image_size={size}')
