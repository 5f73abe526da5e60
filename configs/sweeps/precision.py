r"""Does bfloat16 compute learn as float32 does? One question, paired by seed.

  python -m nin sweep configs/sweeps/precision.py --workdir runs/precision --dry_run
  python -m nin sweep configs/sweeps/precision.py --workdir runs/precision
  python -m nin report runs/precision

  # The real-CIFAR CPU budget (docs/precision_cifar_cpu has one such run): NiN at an
  # eighth of its widths, 5 epochs of the fast protocol on all 45,000 training
  # images, as configs/sweeps/questions.py:cpu trains it; 5 seeds in each dtype.
  python -m nin sweep configs/sweeps/precision.py:cpu --workdir runs/precision_cpu \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False
  python -m nin report runs/precision_cpu

  # A few steps of each run on the digits (tests):
  python -m nin sweep configs/sweeps/precision.py:smoke --workdir runs/precision_smoke

The two groups differ only in `dtype`: the dtype of activations and of the
convolutions' and dots' operands. Parameters, optimizer state, BatchNorm
statistics, the loss and every dot's accumulation stay float32 (nin/layers/conv.py), so
no loss scaling is needed: bfloat16 has float32's exponent range, and only its
8-bit significand differs (gradients do not underflow as they can in float16).
"""
from configs.sweeps import questions

GROUPS = {
    'nin_float32': ('configs/nin.py:fast', {'dtype': 'float32'}),
    'nin_bfloat16': ('configs/nin.py:fast', {'dtype': 'bfloat16'}),
}
QUESTIONS = (
    ('P1', 'Does bfloat16 compute change accuracy (against float32)?',
     'nin_bfloat16', 'nin_float32'),
)
SEEDS = (0, 1, 2, 3, 4)
VARIANTS = questions.VARIANTS


def get_questions(arg=None):
  questions.check_variant(arg)
  return [{'id': q, 'question': text, 'a': a, 'b': b} for q, text, a, b in QUESTIONS]


def get_sweep(arg=None):
  variant = questions.check_variant(arg)
  runs = []
  for seed in SEEDS[:2] if variant == 'smoke' else SEEDS:
    for group, (config, overrides) in GROUPS.items():
      overrides = dict(overrides)
      if variant == 'cpu':
        overrides.update(questions.CPU_OVERRIDES)
        overrides['model.width_divisor'] = 8
      elif variant == 'smoke':
        config += ',digits'
        overrides.update({'num_train_steps': 3, 'eval_every_epochs': 1.0})
      runs.append({'group': group, 'seed': seed, 'config': config, 'overrides': overrides})
  return runs
