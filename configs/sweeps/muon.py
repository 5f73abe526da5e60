r"""Muon against SGD: NiN at a quarter of its widths under the fast protocol (9.9 epochs).

  # Muon's own peak rate, chosen on validation: Muon on NiN's hidden kernels at half, once
  # and twice airbench94_muon's 0.24 (LR_STEPS), 2 seeds. The runs at 0.24 are
  # docs/time_to_accuracy/nin_fast_quarter_muon (the same configs: copy them in); the other
  # 4 take about 70 minutes on 2 CPU cores, two at a time on one core each.
  python -m nin sweep configs/sweeps/muon.py:lr_grid --workdir runs/muon_lr \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False
  python -m nin report runs/muon_lr

The net and data are docs/time_to_accuracy's Muon runs: `configs/nin.py:fast,muon` at a
quarter of NiN's widths, 45,000 training images and 5,000 for validation, evaluated once an
epoch. Only Muon's rate moves (`optimizer.learning_rate`); the parameters Muon does not take
(biases, BatchNorm, the classifier) keep the protocol's SGD at `optimizer.sgd_learning_rate`.
SGD's side of the comparison is the ladder's `nin` group (configs/sweeps/questions.py:ladder,
SGD at the rate its grids chose), so Muon is set against a tuned SGD, not the protocol's 1.5.
"""

CONFIG = 'configs/nin.py:fast,muon'
OVERRIDES = {'model.width_divisor': 4}
LEARNING_RATE = 0.24  # airbench94_muon's, and the committed Muon runs'.
LR_STEPS = (0.5, 1.0, 2.0)
LR_GRID_SEEDS = (0, 1)
VARIANTS = ('lr_grid',)


def check_variant(arg):
  variant = arg or ''
  if variant not in VARIANTS:
    raise ValueError(f'Unknown sweep variant {variant!r}; valid: {", ".join(VARIANTS)}')
  return variant


def get_questions(arg=None):
  check_variant(arg)
  return []  # A grid chooses; it answers nothing.


def get_sweep(arg=None):
  check_variant(arg)
  runs = []
  for step in LR_STEPS:
    for seed in LR_GRID_SEEDS:
      lr = round(LEARNING_RATE * step, 6)
      runs.append({'group': f'nin_muon@lr{lr:g}', 'seed': seed, 'config': CONFIG,
                   'overrides': {**OVERRIDES, 'optimizer.learning_rate': lr}})
  return runs
