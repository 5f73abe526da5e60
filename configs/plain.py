r"""3x3-only baselines: no 1x1 layer anywhere (see models/plain.py for sizing).

  python train.py --config configs/plain.py --workdir runs/plain
  python train.py --config configs/plain.py:large --workdir runs/plain_large
  python train.py --config configs/plain.py:digits --workdir runs/plain_digits
  python -m nin.summary --config configs/plain.py

Variants (combine with commas):
  large   GoogLeNet-sized (about 6M parameters).
  bn      BatchNorm after every conv.
  digits  a narrow version on scikit-learn's digits (CPU).
  smoke   a tiny version for a few steps on synthetic data.

Recipe: NiN's (SGD momentum 0.9, weight decay 1e-4, step decay at 50% and 75%
of 150 epochs, crop+flip), so that only the architecture differs.
"""
from configs import common

VARIANTS = ('large', 'bn', 'digits', 'smoke')
SIZES = {
    'base': ((64, 64), (128, 128), (224, 224)),
    'large': ((128, 128), (256, 256), (512, 512, 512)),
}


def get_config(arg=None):
  variants = common.parse_variants(arg, VARIANTS)
  c = common.get_base_config()
  c.model.name = 'plain'
  c.model.stages = SIZES['large' if 'large' in variants else 'base']
  c.model.dropout_rate = 0.3
  c.model.use_bn = 'bn' in variants

  c.num_epochs = 150.0
  c.optimizer.learning_rate = 0.1 if c.model.use_bn else 0.05
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = 'piecewise'
  c.schedule.boundaries_epochs = (0.5, 0.75)
  c.schedule.warmup_epochs = 2.0

  if 'digits' in variants:
    common.digits(c)
    c.model.stages = (((64, 64), (128, 128), (192, 192)) if 'large' in variants
                      else ((32, 32), (64, 64), (96,)))
    c.model.use_bn = True
    c.model.dropout_rate = 0.1
  if 'smoke' in variants:
    common.smoke(c)
    c.model.stages = ((16,), (32,), (32,)) if 'large' in variants else ((8,), (16,), (16,))
  return c
