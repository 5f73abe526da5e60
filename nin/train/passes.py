"""Passes of a compiled step over many batches, on the host's side of the loop.

The steps themselves (nin/train/steps.py) are jitted functions of one batch;
these drive them over a whole split, and add up what they return:

- `evaluate_split`: loss, accuracy and confusion matrix of a split;
- `recompute_batch_stats`: BatchNorm's statistics under the weights being evaluated.

The training loop (nin/train/loop.py) and the evaluation of a saved run
(nin/evaluation/evaluate.py) both use them.
"""
import jax
import jax.numpy as jnp
import numpy as np

from nin.data import pipeline


# How metrics of each evaluation split are named in records: val_accuracy, test_loss, ...
PREFIX = {'validation': 'val', 'test': 'test'}


def evaluate_split(eval_fn, state, pipe: pipeline.Pipeline, split: str = 'test') -> dict:
  """Loss, accuracy and confusion matrix (rows: true class) over the whole split.

  Keys are prefixed by the split (`val_accuracy`, `test_loss`, ...); `count` and
  `confusion` are not.
  """
  sums = None
  for images, labels, mask in pipe.eval_batches(split):
    out = eval_fn(state, images, labels, mask)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  sums = jax.device_get(sums)
  p = PREFIX[split]
  out = {f'{p}_loss': float(sums['loss_sum'] / sums['count']),
         f'{p}_accuracy': float(sums['correct'] / sums['count']),
         'count': int(sums['count']), 'confusion': np.asarray(sums['confusion'], np.int64)}
  if 'tta_correct' in sums:  # The same with test-time augmentation.
    out.update({f'{p}_loss_tta': float(sums['tta_loss_sum'] / sums['count']),
                f'{p}_accuracy_tta': float(sums['tta_correct'] / sums['count']),
                'confusion_tta': np.asarray(sums['tta_confusion'], np.int64)})
  return out


def predicted_counts(result) -> list:
  """How often each class was predicted: a collapsed model predicts one class everywhere."""
  return [int(n) for n in np.asarray(result['confusion']).sum(0)]


def recompute_batch_stats(stats_fn, state, batches):
  """The state with BatchNorm statistics averaged over `batches` (images) under its weights.

  The running averages of training follow weights that moved since they were
  taken; with a high learning rate evaluation with them can be far off (the
  fast protocol, configs/common.py). Training itself never reads them, so
  replacing them changes evaluation only.
  """
  total = None
  for images in batches:
    stats = stats_fn(state, images)
    total = stats if total is None else jax.tree.map(jnp.add, total, stats)
  return state.replace(batch_stats=jax.tree.map(lambda x: x / len(batches), total))
