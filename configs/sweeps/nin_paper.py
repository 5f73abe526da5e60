r"""The NiN paper's own ablations on CIFAR-10: the head (Sec. 4.6) and dropout (Sec. 4.2).

  python -m nin sweep configs/sweeps/nin_paper.py --workdir runs/nin_paper_ablations
  python -m nin report runs/nin_paper_ablations

  # Under the paper's recipe (no BatchNorm, step decay; configs/nin.py:paper):
  python -m nin sweep configs/sweeps/nin_paper.py:paper --workdir runs/nin_paper_ablations_paper

  # The real-CIFAR CPU twin (configs/nin.py:cpu models, 2 seeds; docs/compare_cifar_cpu):
  python -m nin sweep configs/sweeps/nin_paper.py:cpu --workdir runs/nin_paper_cifar_cpu \
      --override dataset.manual_dir=CIFAR_FOLDER
  # Offline, in minutes: nin_paper.py:digits; a few steps each: nin_paper.py:smoke.

Groups, each a variant of configs/nin.py and otherwise the same model and recipe:
  nin             global average pooling over the 10 class maps, dropout 0.5
                  between the mlpconv blocks (the paper's NiN).
  nin_fc          the 10 class maps flattened into a fully connected layer
                  instead of global average pooling (the paper's "mlpconv +
                  fully connected").
  nin_fc_dropout  the same with dropout 0.5 before that layer.
  nin_no_dropout  global average pooling, no dropout between the blocks.
Runs and workdirs as in compare.py: <workdir>/<group>/seed<seed>.
"""
import itertools

GROUPS = (
    ('nin', ''),
    ('nin_fc', 'fc'),
    ('nin_fc_dropout', 'fc_dropout'),
    ('nin_no_dropout', 'no_dropout'),
)
SEEDS = (0, 1, 2)
CPU_SEEDS = (0, 1)
VARIANTS = ('', 'paper', 'cpu', 'digits', 'smoke')


def get_sweep(arg=None):
  variant = arg or ''
  if variant not in VARIANTS:
    raise ValueError(f'Unknown sweep variant {variant!r}; valid: paper, cpu, digits, smoke')
  runs = []
  for (group, ablation), seed in itertools.product(
      GROUPS, CPU_SEEDS if variant == 'cpu' else SEEDS):
    variants = ','.join(v for v in (ablation, variant) if v)
    config = 'configs/nin.py' + (f':{variants}' if variants else '')
    overrides = {'num_train_steps': 4} if variant == 'smoke' else {}
    runs.append({'group': group, 'seed': seed, 'config': config, 'overrides': overrides})
  return runs
