r"""GoogLeNet / Inception v1 with and without 1x1 bottlenecks.

  python train.py --config configs/googlenet.py --workdir runs/googlenet
  python train.py --config configs/googlenet.py:naive --workdir runs/googlenet_naive
  python -m nin summary --config configs/googlenet.py:imagenet   # Table 1 of the paper
  python train.py --config configs/googlenet.py:digits --workdir runs/googlenet_digits
  python train.py --config configs/googlenet.py:fast --workdir runs/googlenet_fast

Variants (combine with commas):
  fast      the fast protocol (common.fast: airbench94's recipe without its net).
  muon      with fast: Muon on the hidden kernels (common.fast_muon; airbench94_muon's).
  naive     no 3x3/5x5 reduce layers (Fig. 2a, keeping the pool projection).
  reference the CIFAR recipe of common reproductions (below) instead of the
            project's one protocol.
  imagenet  the paper's 224x224, 1000-class layout (summaries and benchmarks
            on synthetic data; this project trains on CIFAR only).
  cpu       real CIFAR-10 on a CPU (common.cifar_cpu): every block at an eighth of
            its widths, stem 24.
  digits    blocks 3a,3b,4a at a quarter of the widths, on scikit-learn's digits (CPU).
  smoke     blocks 3a,3b at an eighth of the widths, a few steps on synthetic data.

Architecture: the CIFAR adaptation common in reproductions (a 3x3 stem of
192 channels, BatchNorm after every conv, no auxiliary classifiers). The
paper predates BatchNorm, trains on ImageNet only and reports no CIFAR-10
figure, so no paper-faithful CIFAR recipe exists.

Default recipe: the project's one protocol (configs/common.py: 150 epochs,
cosine, peak learning rate 0.1, weight decay 5e-4). `reference`: the recipe of
kuangliu/pytorch-cifar's GoogLeNet (SGD momentum 0.9, learning rate 0.1,
cosine decay, weight decay 5e-4, 200 epochs).
"""
from configs import common

VARIANTS = ('fast', 'muon', 'naive', 'reference', 'imagenet', 'cpu', 'digits', 'smoke')


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

  if 'fast' in variants:
    common.check_fast(variants)
    common.fast(c)
  if 'reference' in variants:
    c.num_epochs = 200.0
    c.optimizer.nesterov = False
    c.schedule.warmup_epochs = 0.0

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
  if 'cpu' in variants:
    common.cifar_cpu(c)
    c.model.stem_width = 24
    c.model.width_divisor = 8
  if 'digits' in variants:
    if 'fast' in variants:
      common.fast(c, batch_size=128)
    common.digits(c, keep_recipe='fast' in variants)
    c.model.blocks = ('3a', '3b', '4a')
    c.model.stem_width = 32
    c.model.width_divisor = 4
  if 'smoke' in variants:
    common.smoke(c)
    c.model.blocks = ('3a', '3b')
    c.model.stem_width = 16
    c.model.width_divisor = 8
  if 'muon' in variants:  # Last: the optimizer over whatever recipe the variants set.
    common.check_muon(variants)
    common.fast_muon(c)
  return c
