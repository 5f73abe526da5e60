r"""The comparison: what does a 1x1 convolution buy? Three seeds of each model.

  python -m nin.sweep configs/sweeps/compare.py --workdir runs/compare --dry_run
  python -m nin.sweep configs/sweeps/compare.py --workdir runs/compare
  python -m nin.report runs/compare

  # The CPU twin: the same runs, narrow models on scikit-learn's digits (about half an
  # hour on 2 CPU cores; docs/compare_digits/report.md is one such run).
  python -m nin.sweep configs/sweeps/compare.py:digits --workdir runs/compare_digits
  python -m nin.report runs/compare_digits

Each run is {'group', 'seed', 'config', 'overrides'} (the runner adds
--config.seed=<seed>); its workdir is
<sweep workdir>/<group>/seed<seed>. The report averages over seeds per group.
"""
import itertools

# (group, config file:variants); CIFAR-10 with each family's paper-faithful recipe.
MODELS = (
    ('nin', 'configs/nin.py'),
    ('nin_relu_only', 'configs/nin.py:relu_only'),
    ('nin_linear_1x1', 'configs/nin.py:linear'),
    ('googlenet', 'configs/googlenet.py'),
    ('googlenet_naive', 'configs/googlenet.py:naive'),
    ('plain', 'configs/plain.py'),
    ('plain_large', 'configs/plain.py:large'),
)
SEEDS = (0, 1, 2)


def _with_variant(config, variant):
  return f'{config},{variant}' if ':' in config else f'{config}:{variant}'


def get_sweep(arg=None):
  variant = arg or ''
  if variant not in ('', 'digits', 'smoke'):
    raise ValueError(f'Unknown sweep variant {variant!r}; valid: digits, smoke')
  runs = []
  for (group, config), seed in itertools.product(MODELS, SEEDS):
    overrides = {}
    if variant:
      config = _with_variant(config, variant)
    if variant == 'smoke':
      overrides['num_train_steps'] = 4
    runs.append({'group': group, 'seed': seed, 'config': config, 'overrides': overrides})
  return runs
