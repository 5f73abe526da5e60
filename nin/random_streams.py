"""Every random stream of a run, each with the id folded into the run's seed.

All of a run's randomness comes from `config.seed`. Each consumer takes its own
stream, `key(seed, stream)`, so that the streams are independent: the same seed
keeps the same initialisation and the same batches whatever else changes (a
dropout rate, a flip scheme), and paired comparisons over seeds pair like with
like. One list here, so that no two consumers share an id by accident. The ids
are part of every run's results: changing one changes what a seed means.
"""
import jax

INIT = None   # The parameters' initialisation: the seed's own key (nin.train.steps).
DATA = 1      # The order of the training batches and their augmentation (nin.data.pipeline).
DROPOUT = 2   # Dropout masks, folded once more with the step (nin.train.steps).
FLIP = 3      # Which images the alternating flips start mirrored (nin.data.pipeline).
# Not of the seed: the dropout masks while BatchNorm's statistics are recomputed before an
# evaluation (nin.train.steps.batch_stats_of) come from this fixed key in every run.
STATS_DROPOUT_KEY = 0


def key(seed: int, stream):
  """The key of `stream` (one of the ids above) for a run's `seed`."""
  root = jax.random.key(seed)
  return root if stream is None else jax.random.fold_in(root, stream)
