r"""Network in Network (Lin et al. 2013) on CIFAR-10, and its 1x1 ablations.

  python train.py --config configs/nin.py --workdir runs/nin
  python train.py --config configs/nin.py:relu_only --workdir runs/nin_relu_only
  python train.py --config configs/nin.py:linear --workdir runs/nin_linear
  python train.py --config configs/nin.py:digits --workdir runs/nin_digits   # CPU, ~1 min
  python -m nin.summary --config configs/nin.py

Variants (combine with commas, e.g. `:relu_only,digits`):
  bn         BatchNorm after every conv (not in the paper; trains faster).
  relu_only  hidden 1x1 layers replaced by a ReLU alone (see models/nin.py).
  linear     1x1 layers without ReLU; each block folds into one kxk conv.
  digits     a narrower NiN on scikit-learn's digits, offline, for a CPU.
  smoke      a tiny NiN for a few steps on synthetic data.

Recipe: the paper trains with SGD, momentum 0.9, batch 128, weight decay and
dropout 0.5, dividing the learning rate by 10 on plateaus; here the plateaus
are fixed at 50% and 75% of 150 epochs, after a short warmup, with the usual
crop+flip augmentation (the paper's 8.81% test error is with augmentation).
"""
from configs import common

VARIANTS = ('bn', 'relu_only', 'linear', 'digits', 'smoke')
PAPER_BLOCKS = ((5, (192, 160, 96)), (5, (192, 192, 192)), (3, (192, 192, 10)))
RELU_ONLY_BLOCKS = ((5, (192,)), (5, (192,)), (3, (192, 10)))


def _scale(blocks, num_classes, divisor):
  """Divides hidden widths by `divisor`, keeping the class count at the end."""
  out = []
  for k, widths in blocks:
    out.append((k, tuple(max(8, w // divisor) for w in widths)))
  last_k, last_w = out[-1]
  out[-1] = (last_k, last_w[:-1] + (num_classes,))
  return tuple(out)


def get_config(arg=None):
  variants = common.parse_variants(arg, VARIANTS)
  c = common.get_base_config()
  c.model.name = 'nin'
  c.model.blocks = RELU_ONLY_BLOCKS if 'relu_only' in variants else PAPER_BLOCKS
  c.model.pools = ('max', 'avg')
  c.model.linear_1x1 = 'linear' in variants
  c.model.dropout_rate = 0.5
  c.model.use_bn = 'bn' in variants

  c.num_epochs = 150.0
  c.optimizer.learning_rate = 0.1 if c.model.use_bn else 0.05
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = 'piecewise'
  c.schedule.boundaries_epochs = (0.5, 0.75)
  c.schedule.warmup_epochs = 2.0

  if 'digits' in variants:
    common.digits(c)
    c.model.blocks = _scale(c.model.blocks, 10, 3)
    c.model.use_bn = True
    c.model.dropout_rate = 0.2
  if 'smoke' in variants:
    common.smoke(c)
    c.model.blocks = _scale(c.model.blocks, 10, 12)
  return c
