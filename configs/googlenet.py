r"""GoogLeNet / Inception v1 with and without 1x1 bottlenecks.

  python train.py --config configs/googlenet.py --workdir runs/googlenet
  python train.py --config configs/googlenet.py:naive --workdir runs/googlenet_naive
  python -m nin.summary --config configs/googlenet.py:imagenet   # Table 1 of the paper
  python train.py --config configs/googlenet.py:digits --workdir runs/googlenet_digits

Variants (combine with commas):
  naive     no 3x3/5x5 reduce layers (Fig. 2a, keeping the pool projection).
  imagenet  the paper's 224x224, 1000-class layout (summaries and benchmarks
            on synthetic data; this project trains on CIFAR only).
  digits    blocks 3a,3b,4a at a quarter of the widths, on scikit-learn's digits (CPU).
  smoke     blocks 3a,3b at an eighth of the widths, a few steps on synthetic data.

Recipe: the CIFAR adaptation common in reproductions (a 3x3 stem, BatchNorm,
SGD momentum 0.9, learning rate 0.1 with cosine decay, weight decay 5e-4,
200 epochs). The paper reports no CIFAR-10 figure; this one is unmeasured here.
"""
from configs import common

VARIANTS = ('naive', 'imagenet', 'digits', 'smoke')


def get_config(arg=None):
  variants = common.parse_variants(arg, VARIANTS)
  c = common.get_base_config()
  c.model.name = 'googlenet'
  c.model.layout = 'cifar'
  c.model.bottleneck = 'naive' not in variants
  c.model.blocks = ('3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b')
  c.model.stem_width = 192
  c.model.width_divisor = 1
  c.model.dropout_rate = 0.0
  c.model.use_bn = True

  c.num_epochs = 200.0
  c.optimizer.learning_rate = 0.1
  c.optimizer.weight_decay = 5e-4
  c.schedule.name = 'cosine'

  if 'imagenet' in variants:
    c.model.layout = 'imagenet'
    c.model.num_classes = 1000
    c.model.stem_width = 192
    c.model.dropout_rate = 0.4
    c.model.use_bn = False
    c.dataset.name = 'synthetic'
    c.dataset.synthetic_classes = 1000
    c.dataset.image_size = 224
    c.batch_size = 256
  if 'digits' in variants:
    common.digits(c)
    c.model.blocks = ('3a', '3b', '4a')
    c.model.stem_width = 32
    c.model.width_divisor = 4
  if 'smoke' in variants:
    common.smoke(c)
    c.model.blocks = ('3a', '3b')
    c.model.stem_width = 16
    c.model.width_divisor = 8
  return c
