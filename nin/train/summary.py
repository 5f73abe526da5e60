"""Per-block and per-layer parameters and multiply-adds of a model.

    python -m nin summary --config configs/nin.py
    python -m nin summary --config configs/googlenet.py:imagenet --json

Counts come from the model itself: every module call is intercepted under
`jax.eval_shape` (no FLOP is spent) to record its output shape, parameters are
read from the initialised tree, and a layer's multiply-adds are
(output pixels) x (kernel size), exact for convolutions and Dense layers
alike, since a Dense over channels is a 1x1 convolution. Pooling, BatchNorm
and ReLU are not counted as multiply-adds.
"""
import dataclasses
import json
import math
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp

from nin.layers import pooling


@dataclasses.dataclass
class Row:
  name: str
  depth: int          # 1: a block (or a top-level layer), 2: a layer inside a block.
  kind: str           # Module class name (for pooling: MaxPool or AvgPool).
  output_shape: tuple  # Per example, without the batch axis.
  params: int
  macs: int           # Multiply-adds per example.


_UNITS = ('ConvUnit',)
_HIDDEN = ('Dropout',)


def _count(tree) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _subtree(tree, path):
  for p in path:
    tree = tree.get(p, {}) if isinstance(tree, dict) else {}
  return tree


def _macs(params_tree, out_shapes) -> int:
  """Sum over modules below a path: output pixels x kernel size."""
  total = 0
  for path, shape in out_shapes.items():
    kernel = _subtree(params_tree, path).get('kernel')
    if kernel is not None and not isinstance(kernel, dict):
      total += math.prod(shape[:-1]) * math.prod(kernel.shape)
  return total


def _kind(module: nn.Module) -> str:
  if isinstance(module, pooling.Pool):
    return f'{module.kind.capitalize()}Pool'  # MaxPool, AvgPool.
  return type(module).__name__


def summarize(model: nn.Module, input_shape=(32, 32, 3)) -> list[Row]:
  """Rows for every top-level module (depth 1) and its children (depth 2)."""
  calls = {}  # path -> (kind, output shape without batch), in call order.

  def record(next_fun, args, kwargs, context):
    path = context.module.path
    first = context.method_name == '__call__' and path and path not in calls
    if first:
      calls[path] = None  # Reserve the slot: parents are listed before children.
    out = next_fun(*args, **kwargs)
    if first:
      calls[path] = (_kind(context.module), tuple(out.shape[1:]))
    return out

  def init(x):
    with nn.intercept_methods(record):
      return model.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)}, x)

  variables = jax.eval_shape(init, jnp.zeros((1, *input_shape), jnp.float32))
  params = variables['params']
  leaf_shapes = {p: shape for p, (_, shape) in calls.items()}
  rows = []
  for path, (kind, shape) in calls.items():
    # A ConvUnit (conv + BN + ReLU) is one layer; its inner modules get no row.
    if len(path) > 2 or kind in _HIDDEN or (len(path) == 2 and calls[path[:1]][0] in _UNITS):
      continue
    below = {p: s for p, s in leaf_shapes.items() if p[:len(path)] == path}
    rows.append(Row('/'.join(path), len(path), kind, shape,
                    _count(_subtree(params, path)), _macs(params, below)))
  return rows


def totals(rows: list[Row]) -> dict[str, int]:
  top = [r for r in rows if r.depth == 1]
  return {'params': sum(r.params for r in top), 'macs': sum(r.macs for r in top)}


# The convention of `train_flops`: a training step costs three forward passes
# (forward, and the gradients of activations and of weights), each multiply-add two FLOPs.
FLOPS_PER_MAC = 2 * 3


def macs_per_image(model: nn.Module, image_shape) -> int:
  """The model's counted multiply-adds per image."""
  return totals(summarize(model, tuple(image_shape)))['macs']


def format_table(rows: list[Row]) -> str:
  lines = [f"{'layer':<24} {'kind':<10} {'output':>16} {'params':>12} {'mult-adds':>15}",
           '-' * 81]
  for r in rows:
    name = ('  ' * (r.depth - 1) + r.name.split('/')[-1])[:24]
    shape = 'x'.join(map(str, r.output_shape))
    lines.append(f'{name:<24} {r.kind[:10]:<10} {shape:>16} {r.params:>12,} {r.macs:>15,}')
  t = totals(rows)
  lines += ['-' * 81, f"{'total':<24} {'':<10} {'':>16} {t['params']:>12,} {t['macs']:>15,}"]
  return '\n'.join(lines)


def input_shape_for(config) -> tuple:
  size = config.dataset.image_size
  return (size, size, 3)


def define_flags():
  from absl import flags  # Lazy: the library functions above need no flags.
  from ml_collections import config_flags
  config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/nin.py:relu_only.')
  flags.DEFINE_bool('json', False, 'Write the rows as JSON to stdout.')
  flags.mark_flags_as_required(['config'])


def main(argv):
  from absl import flags
  from nin.errors import ConfigError
  from nin.registry import build_model
  del argv
  cfg = flags.FLAGS.config

  def show():
    size = input_shape_for(cfg)[0]
    if not isinstance(size, int) or size <= 0:
      raise ConfigError(f'dataset.image_size={size} must be a positive integer')
    rows = summarize(build_model(cfg.model), input_shape_for(cfg))
    if flags.FLAGS.json:
      json.dump({'rows': [dataclasses.asdict(r) for r in rows], 'totals': totals(rows)},
                sys.stdout, indent=1)
      print()
    else:
      print(format_table(rows))
  return show()
