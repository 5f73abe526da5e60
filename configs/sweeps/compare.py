r"""The comparison: what does a 1x1 convolution buy? Three seeds of each model.

  python -m nin sweep configs/sweeps/compare.py --workdir runs/compare --dry_run
  python -m nin sweep configs/sweeps/compare.py --workdir runs/compare
  python -m nin report runs/compare

  # Each family's own (paper-faithful) recipe instead of the one protocol:
  python -m nin sweep configs/sweeps/compare.py:paper --workdir runs/compare_paper

  # The real-CIFAR CPU twin: the same groups and protocol, narrowed models (a quarter of
  # NiN's and the 3x3 net's widths, an eighth of GoogLeNet's and the large 3x3 net's),
  # 15,000 training images, 6 epochs, 2 seeds (docs/compare_cifar_cpu has the commands
  # and one such run).
  python -m nin sweep configs/sweeps/compare.py:cpu --workdir runs/compare_cifar_cpu \
      --override dataset.manual_dir=CIFAR_FOLDER
  python -m nin report runs/compare_cifar_cpu

  # The digits twin: the same groups, narrow models on scikit-learn's digits (about half an
  # hour on 2 CPU cores; docs/compare_digits/report.md is one such run).
  python -m nin sweep configs/sweeps/compare.py:digits --workdir runs/compare_digits
  python -m nin report runs/compare_digits

One protocol per table: by default every group trains under the project's one
recipe (configs/common.py: BatchNorm, SGD Nesterov 0.9, peak learning rate
0.1 after 1 warmup epoch, cosine over 150 epochs, weight decay 5e-4,
crop+flip, 5,000 validation images), so the groups differ only in
architecture (dropout is part of each architecture: NiN 0.5 between blocks,
the 3x3 nets 0.3, the CIFAR GoogLeNet none). `paper` gives each family its own
recipe (configs/*.py, `paper` or, for GoogLeNet, which has no CIFAR recipe in
its paper, `reference`); its table mixes recipes and the report says so.

Each run is {'group', 'seed', 'config', 'overrides'} (the runner adds
--config.seed=<seed>); its workdir is <sweep workdir>/<group>/seed<seed>.
The report averages over seeds per group.
"""
import itertools

# (group, config file:variants) under the one protocol.
MODELS = (
    ('nin', 'configs/nin.py'),
    ('nin_relu_only', 'configs/nin.py:relu_only'),
    ('nin_linear_1x1', 'configs/nin.py:linear'),
    ('googlenet', 'configs/googlenet.py'),
    ('googlenet_naive', 'configs/googlenet.py:naive'),
    ('plain', 'configs/plain.py'),
    ('plain_large', 'configs/plain.py:large'),
)
# The variant that gives each family its own recipe.
OWN_RECIPE = {'nin': 'paper', 'plain': 'paper', 'googlenet': 'reference'}
SEEDS = (0, 1, 2)
CPU_SEEDS = (0, 1)  # The real-CIFAR CPU twin: two seeds fit its time.
VARIANTS = ('', 'paper', 'cpu', 'digits', 'smoke')


def _with_variant(config, variant):
  return f'{config},{variant}' if ':' in config else f'{config}:{variant}'


def get_sweep(arg=None):
  variant = arg or ''
  if variant not in VARIANTS:
    raise ValueError(f'Unknown sweep variant {variant!r}; valid: paper, cpu, digits, smoke')
  runs = []
  for (group, config), seed in itertools.product(MODELS, CPU_SEEDS if variant == 'cpu' else SEEDS):
    overrides = {}
    if variant == 'paper':
      family = config.split('/')[1].split('.')[0]
      config = _with_variant(config, OWN_RECIPE[family])
    elif variant:
      config = _with_variant(config, variant)
    if variant == 'smoke':
      overrides['num_train_steps'] = 4
    runs.append({'group': group, 'seed': seed, 'config': config, 'overrides': overrides})
  return runs
