r"""Muon against SGD: NiN at a quarter of its widths under the fast protocol (9.9 epochs).

  # Muon's own peak rate, chosen on validation: Muon on NiN's hidden kernels at a quarter,
  # half, once and twice airbench94_muon's 0.24 (LR_STEPS), 2 seeds. The runs at 0.24 are
  # docs/time_to_accuracy/nin_fast_quarter_muon (the same configs: copy them in); the other
  # 6 take about 2 hours on 2 CPU cores, two at a time on one core each (37 minutes a run).
  python -m nin sweep configs/sweeps/muon.py:lr_grid --workdir runs/muon_lr \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False
  python -m nin report runs/muon_lr

  # The answer, on seeds that chose nothing (2-6): Muon at the rate its grid chose
  # (LEARNING_RATE_CHOSEN) against the ladder's `nin` (SGD at the rate the ladder trains it
  # at), both evaluated every half epoch as the ladder. The `nin` runs are the ladder's own
  # (configs/sweeps/questions.py:ladder, the same configs: copy its seeds 2-6 in); Muon's 5
  # take about 2 hours on 2 CPU cores, two at a time on one core each.
  python -m nin sweep configs/sweeps/muon.py:ladder --workdir runs/muon_ladder \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False
  python -m nin report runs/muon_ladder

The grid's net and data are docs/time_to_accuracy's Muon runs: `configs/nin.py:fast,muon` at
a quarter of NiN's widths, 45,000 training images and 5,000 for validation, evaluated once an
epoch. Only Muon's rate moves (`optimizer.learning_rate`); the parameters Muon does not take
(biases, BatchNorm, the classifier) keep the protocol's SGD at `optimizer.sgd_learning_rate`.
SGD's side is the ladder's `nin` group, so Muon is set against SGD at a rate chosen for NiN,
not the protocol's 1.5, which was tuned for airbench's net.
"""
from configs.sweeps import questions

CONFIG = 'configs/nin.py:fast,muon'
OVERRIDES = {'model.width_divisor': 4}
LEARNING_RATE = 0.24  # airbench94_muon's, and the committed Muon runs'.
# Half, once and twice first; the best of those, 0.12, sat at the grid's lower edge, so the
# grid went on down a doubling (0.06), which lost to 0.12 on both seeds.
LR_STEPS = (0.25, 0.5, 1.0, 2.0)
LR_GRID_SEEDS = (0, 1)
# Chosen on validation by `lr_grid` (docs/time_to_accuracy/muon_lr_grid: the best mean, inside
# the grid); the ladder variant refuses to train Muon while this is None.
LEARNING_RATE_CHOSEN = 0.12
ANSWER_SEEDS = (2, 3, 4, 5, 6)
VARIANTS = ('lr_grid', 'ladder')


def check_variant(arg):
  variant = arg or ''
  if variant not in VARIANTS:
    raise ValueError(f'Unknown sweep variant {variant!r}; valid: {", ".join(VARIANTS)}')
  return variant


def get_questions(arg=None):
  if check_variant(arg) == 'lr_grid':
    return []  # A grid chooses; it answers nothing.
  return [{'id': 'M1', 'question': 'Muon on the hidden kernels against SGD at its tuned rate',
           'a': 'nin_muon', 'b': 'nin', 'seeds': list(ANSWER_SEEDS),
           'chose': list(LR_GRID_SEEDS)}]


def get_sweep(arg=None):
  variant = check_variant(arg)
  runs = []
  if variant == 'lr_grid':
    for step in LR_STEPS:
      for seed in LR_GRID_SEEDS:
        lr = round(LEARNING_RATE * step, 6)
        runs.append({'group': questions.lr_group('nin_muon', lr), 'seed': seed, 'config': CONFIG,
                     'overrides': {**OVERRIDES, 'optimizer.learning_rate': lr}})
    return runs
  if LEARNING_RATE_CHOSEN is None:
    raise ValueError('muon.py:ladder trains Muon at the rate its grid chose, and '
                     'LEARNING_RATE_CHOSEN is not set yet: run muon.py:lr_grid and copy its '
                     "report's choice in")
  sgd_config, sgd_overrides = questions._overrides('nin', 'ladder')
  for seed in ANSWER_SEEDS:
    runs.append({'group': 'nin_muon', 'seed': seed, 'config': CONFIG,
                 'overrides': {**OVERRIDES, **questions.LADDER_OVERRIDES,
                               'optimizer.learning_rate': LEARNING_RATE_CHOSEN}})
    runs.append({'group': 'nin', 'seed': seed, 'config': sgd_config, 'overrides': sgd_overrides})
  return runs
