"""The one place where the library reaches the model families."""
import ast
import json
from typing import Any, Mapping

import flax.linen as nn

from models import googlenet, nin as nin_model, plain
from nin.layers import pooling
from nin.errors import ConfigError

MODELS = {
    'nin': nin_model.NiN,
    'googlenet': googlenet.GoogLeNet,
    'plain': plain.Plain,
    'airbench': plain.Airbench,
}

# Model fields with a fixed set of values, checked before anything is built.
FIELD_CHOICES = {
    'nin': {'head': nin_model.HEADS, 'class_map_init': nin_model.CLASS_MAP_INITS,
            'pool_impl': pooling.IMPLS},
    'googlenet': {'pool_impl': pooling.IMPLS},
    'plain': {'pool_impl': pooling.IMPLS},
    'airbench': {'pool_impl': pooling.IMPLS, 'head_init': tuple(plain.HEAD_INITS)},
}
# Parameters a family computes from the training data at initialisation:
# fn(model, params, normalised training images) -> params. Only the first
# DATA_FIT_EXAMPLES training images are read (airbench fits its whitening on 5,000).
DATA_FITS = {
    'airbench': plain.whitening_data_fit,
}
DATA_FIT_EXAMPLES = 5000
# Fields a family resolves itself (raising ValueError on a bad value), as the values
# that describe the network built: NiN's block table, narrowed and with its class count.
RESOLVED_FIELDS = {
    'nin': lambda m: {'blocks': m.resolved_blocks(), 'width_divisor': 1},
}

# Fields that take a name or a value written out: a value given on the command line
# (where the config holds a name) arrives as its Python literal, parsed here.
LITERAL_FIELDS = {
    'nin': {'blocks': nin_model.BLOCKS},
}


def check_choice(what: str, value: Any, choices) -> None:
  if value not in choices:
    raise ConfigError(f'Unknown {what} {value!r}; valid: {", ".join(map(str, choices))}')


def build_model(model_config: Mapping[str, Any], **overrides) -> nn.Module:
  """Builds `model_config.name` with the remaining fields as arguments."""
  kwargs = dict(model_config)
  name = kwargs.pop('name', None)
  check_choice('model name', name, MODELS)
  kwargs.update(overrides)
  for field, names in LITERAL_FIELDS.get(name, {}).items():
    value = kwargs.get(field)
    if isinstance(value, str) and value not in names:
      try:
        kwargs[field] = ast.literal_eval(value)
      except (ValueError, SyntaxError):
        pass  # Not a literal: the family names the valid choices.
  for field, choices in FIELD_CHOICES.get(name, {}).items():
    if field in kwargs:
      check_choice(f'model.{field}', kwargs[field], choices)
  cls = MODELS[name]
  fields = set(cls.__dataclass_fields__) - {'parent', 'name'}
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ConfigError(f'Unknown argument(s) {", ".join(unknown)} for model {name!r}; '
                      f'valid: {", ".join(sorted(fields))}')
  model = cls(**kwargs)
  try:
    RESOLVED_FIELDS.get(name, lambda m: {})(model)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  return model


def uses_batchnorm(model_config: Mapping[str, Any]) -> bool:
  """Whether the network normalises its convolutions, as the model itself says."""
  return build_model(model_config).batchnorm


def data_fit(model_config: Mapping[str, Any]):
  """fn(model, params, images) that sets parameters from training images, or None."""
  return DATA_FITS.get(model_config['name'])


def canonical_model(model_config: Mapping[str, Any]) -> dict:
  """The network a model config builds, as JSON-like data: every field with its
  default filled in, and NiN's block table resolved. Two configs with equal
  canonical models build the same network (e.g. `blocks='paper'` and the same
  table written out, as older runs saved it)."""
  model = build_model(model_config)
  fields = {f: getattr(model, f) for f in model.__dataclass_fields__ if f not in ('parent', 'name')}
  fields.update(RESOLVED_FIELDS.get(model_config['name'], lambda m: {})(model))
  return json.loads(json.dumps({'name': model_config['name'], **fields}, default=str))
