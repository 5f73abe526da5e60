"""Pooling: SAME max and average pooling, and global average pooling, behind one switch.

`impl` chooses how max and average pooling run:
  taps  each window as window*window strided slices, with a custom gradient
        that scatters back through the same slices (`_max_pool_taps`,
        `_avg_pool_taps`). On a CPU, XLA's own gradient of `reduce_window`
        (select-and-scatter) is slow: for GoogLeNet's 3x3 stride-1 pools this
        is about 7x faster (docs/bench/README.md).
  xla   flax's `nn.max_pool` / `nn.avg_pool` (XLA's `reduce_window`), which
        GPU and TPU compilers handle natively; the taps were never measured there.
  auto  (the default) taps on the CPU, xla elsewhere.
Both give the same outputs and gradients (tests/test_pooling.py; for tied
maxima each sends the gradient to one of them). Models take it as
`pool_impl` (config `model.pool_impl`).

This module imports nothing from the project.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

IMPLS = ('auto', 'taps', 'xla')


def resolve(impl: str) -> str:
  """'auto' -> 'taps' on the CPU, 'xla' on GPU/TPU; 'taps' and 'xla' stay."""
  if impl not in IMPLS:
    raise ValueError(f'Unknown pooling impl {impl!r}; valid: {", ".join(IMPLS)}')
  if impl == 'auto':
    return 'taps' if jax.default_backend() == 'cpu' else 'xla'
  return impl


def _same_padding(size, window, stride):
  out = -(-size // stride)
  total = max((out - 1) * stride + window - size, 0)
  return out, (total // 2, total - total // 2)


def _pool_windows(x, window, stride, pad_value):
  """The window*window strided views of the padded input, one per tap."""
  n, h, w, c = x.shape
  (oh, ph), (ow, pw) = _same_padding(h, window, stride), _same_padding(w, window, stride)
  xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=pad_value)
  for dy in range(window):
    for dx in range(window):
      yield lax.slice(xp, (0, dy, dx, 0),
                      (n, dy + (oh - 1) * stride + 1, dx + (ow - 1) * stride + 1, c),
                      (1, stride, stride, 1))


def _scatter_taps(tap_grad, operands, window, stride, in_shape, dtype):
  """The transpose of `_pool_windows`: sums each tap's gradient back onto the input grid.

  `operands` are output-shaped (array, fill value) pairs; `tap_grad(k, *slices)`
  gives tap k's gradient from the operands' slices for that tap. Input row i of the padded grid is
  tap dy of output row o when i = o*s + dy. Split the rows (and columns) into
  residue classes i % s: within class r, row q gets tap dy (dy % s == r) from
  output row q - dy // s. Every tap is then a plain slice of one padded copy of
  the operands, so all taps fuse into one loop per class; the s*s classes
  interleave back with a reshape. (Padding the gradient once per tap, the obvious
  transpose of the strided slices, runs 3.5x slower on CPU.)
  """
  n, h, w, c = in_shape
  s = stride
  (oh, ph), (ow, pw) = _same_padding(h, window, s), _same_padding(w, window, s)
  qh, qw = -(-(h + sum(ph)) // s), -(-(w + sum(pw)) // s)  # Rows, columns per class.
  lo = (window - 1) // s
  pads = ((0, 0, 0), (lo, qh - oh, 0), (lo, qw - ow, 0), (0, 0, 0))
  padded = [lax.pad(a, jnp.asarray(fill, a.dtype), pads) for a, fill in operands]
  classes = [[jnp.zeros((n, qh, qw, c), dtype)] * s for _ in range(s)]
  for k in range(window * window):
    dy, dx = divmod(k, window)
    start = (0, lo - dy // s, lo - dx // s, 0)
    limit = (n, start[1] + qh, start[2] + qw, c)
    term = tap_grad(k, *(lax.slice(a, start, limit) for a in padded))
    classes[dy % s][dx % s] = classes[dy % s][dx % s] + term
  grad = jnp.stack([jnp.stack(row, 3) for row in classes], 2)  # (n, qh, s, qw, s, c)
  grad = grad.reshape(n, qh * s, qw * s, c)
  return grad[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w, :]


def _max_pool_fwd(x, window, stride):
  best = arg = None
  for k, view in enumerate(_pool_windows(x, window, stride, -jnp.inf)):
    if best is None:
      best, arg = view, jnp.zeros(view.shape, jnp.int8)
    else:
      better = view > best  # Ties go to the first tap in row-major order.
      best, arg = jnp.where(better, view, best), jnp.where(better, jnp.int8(k), arg)
  return best, (arg, x.shape)


def _max_pool_bwd(window, stride, residuals, g):
  arg, in_shape = residuals
  zero = jnp.zeros((), g.dtype)
  def tap(k, g_k, arg_k):  # The gradient goes to each window's stored argmax.
    return jnp.where(arg_k == k, g_k, zero)
  return (_scatter_taps(tap, [(g, 0), (arg, -1)], window, stride, in_shape, g.dtype),)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool_taps(x_nhwc, window: int, stride: int):
  """SAME max pooling whose gradient scatters to the stored argmax of each window.

  Equal to `nn.max_pool(x, (w, w), (s, s), 'SAME')`, forward and backward (up
  to which of tied maxima receives the gradient). XLA's own gradient of
  `reduce_window` (select-and-scatter) is slow on CPU: for GoogLeNet's 3x3
  stride-1 pools, this one is about 7x faster (docs/bench/README.md).
  """
  return _max_pool_fwd(x_nhwc, window, stride)[0]


_max_pool_taps.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x_nhwc, window: int, stride: int, impl: str = 'auto'):
  """SAME max pooling, by `impl` (see the module docstring)."""
  if resolve(impl) == 'xla':
    return nn.max_pool(x_nhwc, (window, window), (stride, stride), 'SAME')
  return _max_pool_taps(x_nhwc, window, stride)


def _window_counts(h, w, window, stride):
  """How many real (not padding) pixels each SAME window covers, as (1, oh, ow, 1)."""
  (oh, ph), (ow, pw) = _same_padding(h, window, stride), _same_padding(w, window, stride)
  ones = np.pad(np.ones((h, w), np.float32), (ph, pw))
  counts = sum(ones[dy:dy + (oh - 1) * stride + 1:stride, dx:dx + (ow - 1) * stride + 1:stride]
               for dy in range(window) for dx in range(window))
  return counts[None, :, :, None]


def _avg_pool_fwd(x, window, stride):
  counts = _window_counts(x.shape[1], x.shape[2], window, stride)
  return sum(_pool_windows(x, window, stride, 0)) / counts.astype(x.dtype), x.shape


def _avg_pool_bwd(window, stride, in_shape, g):
  g = g / _window_counts(in_shape[1], in_shape[2], window, stride).astype(g.dtype)
  return (_scatter_taps(lambda k, g_k: g_k, [(g, 0)], window, stride, in_shape, g.dtype),)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _avg_pool_taps(x_nhwc, window: int, stride: int):
  """SAME average pooling over the real pixels only (padding excluded, as in Caffe's NiN).

  Equal to `nn.avg_pool(x, (w, w), (s, s), 'SAME', count_include_pad=False)`;
  forward and backward are the same strided slices as `max_pool`, which XLA's
  CPU backend runs faster than `reduce_window` and its gradient.
  """
  return _avg_pool_fwd(x_nhwc, window, stride)[0]


_avg_pool_taps.defvjp(_avg_pool_fwd, _avg_pool_bwd)


def avg_pool(x_nhwc, window: int, stride: int, impl: str = 'auto'):
  """SAME average pooling over the real pixels only, by `impl`."""
  if resolve(impl) == 'xla':
    return nn.avg_pool(x_nhwc, (window, window), (stride, stride), 'SAME',
                       count_include_pad=False)
  return _avg_pool_taps(x_nhwc, window, stride)


POOLS = {'max': max_pool, 'avg': avg_pool}


class Pool(nn.Module):
  """SAME max or average pooling as a module, so that summaries list it as a layer."""
  kind: str = 'max'  # A key of POOLS.
  window: int = 3
  strides: int = 2
  impl: str = 'auto'

  def __call__(self, x):
    if self.kind not in POOLS:
      raise ValueError(f'Unknown pooling {self.kind!r}; valid: {", ".join(POOLS)}')
    return POOLS[self.kind](x, self.window, self.strides, self.impl)


def global_avg_pool(x_nhwc):
  """NiN's classifier: each map's mean over all positions (any image size)."""
  return jnp.mean(x_nhwc, axis=(1, 2))


def max_pool_blocks(x_nhwc, window: int):
  """VALID max pooling over non-overlapping window x window blocks (PyTorch's MaxPool2d(k)).

  Trailing rows and columns that do not fill a block are dropped (31 -> 15 for
  window 2). A reshape and a max: no `reduce_window`, so its gradient is cheap
  on every backend.
  """
  n, h, w, c = x_nhwc.shape
  oh, ow = h // window, w // window
  x = x_nhwc[:, :oh * window, :ow * window, :].reshape(n, oh, window, ow, window, c)
  return x.max(axis=(2, 4))
