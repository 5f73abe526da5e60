r"""The comparison as questions: each a pair of groups that differ in one thing.

  python -m nin sweep configs/sweeps/questions.py --workdir runs/questions --dry_run
  python -m nin sweep configs/sweeps/questions.py --workdir runs/questions
  python -m nin report runs/questions

  # The real-CIFAR CPU budget (docs/compare_cifar_cpu has one such run): NiN at an
  # eighth of its widths and the nets paired with it, 5 epochs of the fast protocol
  # on all 45,000 training images, seeds 0-6: 49 runs, about 2 hours on 2 CPU cores
  # (seeds 0 and 1 are the learning-rate grid's runs, which chose the rates: the
  # questions are answered on seeds 2-6).
  python -m nin sweep configs/sweeps/questions.py:cpu --workdir runs/questions_cpu \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False
  python -m nin report runs/questions_cpu

  # The CPU rung's `nin` seeds 0-4 again, from the current commit: what a rerun moves.
  python -m nin sweep configs/sweeps/questions.py:rerun --workdir runs/questions_rerun \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False

  # The budget ladder's second rung: NiN and the nets paired with it at a quarter of
  # their widths, the fast protocol's own 9.9 epochs, 45,000 images, 5 seeds (a NiN run
  # trains 16 to 18 minutes on one CPU core, the narrower nets less; two at a time on 2
  # cores, several hours in all: run it as a resumable sweep over several sittings).
  python -m nin sweep configs/sweeps/questions.py:ladder --workdir runs/questions_ladder \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False

  # The peak learning rate of each group, chosen on validation at the CPU budget from
  # LR_GRID (2 seeds each: 56 runs, about 2 hours 20 minutes on 2 CPU cores, two runs at
  # a time); `python -m nin report runs/questions_lr` names the choice, which goes into
  # LEARNING_RATES below and so into the cpu and ladder runs.
  python -m nin sweep configs/sweeps/questions.py:lr_grid --workdir runs/questions_lr \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False

  # The peak learning rates at the ladder's own budget: each group at half, once and twice
  # the rate the CPU grid chose for it (LADDER_LR_STEPS), 2 seeds, and a doubling further where
  # the best sat at an edge (LADDER_LR_EXTENDED). The runs at the CPU rate are the ladder's
  # seeds 0 and 1 (the same configs: copy them in); the other 30 take about 8 hours on 2 CPU
  # cores (10 to 36 minutes of training a run, two at a time on one core each; the sweep
  # resumes where it stopped). `python -m nin report runs/questions_ladder_lr` names each
  # group's best once its runs have all finished.
  python -m nin sweep configs/sweeps/questions.py:ladder_lr_grid --workdir runs/questions_ladder_lr \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False

  # Width apart from epochs: the corner the two rungs leave out, NiN at an eighth of its
  # widths (as the CPU rung) for the ladder's 9.9 epochs, the groups of Q1a, Q1b, Q3 and Q3c.
  # First its own grid (half, once and twice each group's CPU rate, 2 seeds: 30 runs, about
  # 2 hours on 2 CPU cores), whose choices go into CORNER_LEARNING_RATES; then seeds 0-6 at
  # those rates (seeds 0 and 1 are the grid's runs; the 25 of seeds 2-6 answer, about 1.7 hours).
  python -m nin sweep configs/sweeps/questions.py:corner_lr_grid --workdir runs/questions_corner_lr \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False
  python -m nin sweep configs/sweeps/questions.py:corner --workdir runs/questions_corner \
      --override dataset.manual_dir=CIFAR_FOLDER --override dataset.verify_checksum=False

  # A few steps of each run on synthetic data (tests):
  python -m nin sweep configs/sweeps/questions.py:smoke --workdir runs/questions_smoke

Every group trains under the fast protocol (configs/common.py: fast), which has no
dropout anywhere: regularisation is the protocol's, the same for every family, and
dropout is a question of its own (Q5), not a property of one architecture.

The questions (`QUESTIONS`; `nin.experiments.report` reads them from the sweep's sweep.json and
answers each with the difference of the two groups' means and its 95% interval, paired by
seed where the seeds move both groups together and Welch's otherwise, on the seeds that chose
nothing):
  Q1a  What does a 1x1 layer with ReLU buy over a ReLU alone? NiN against NiN whose
       hidden 1x1 layers are replaced by a ReLU, with its first block narrowed so that
       every kxk conv reads as many channels as in NiN (`relu_only_matched`: at
       the CPU widths 21% fewer parameters and 39% fewer mult-adds; a ReLU after a ReLU is the identity,
       so the unmatched `relu_only` would be a shallower net with 29% more parameters).
  Q1c  The same at NiN's parameter count: the ReLU-only net widened until its
       parameters are within 5% of NiN's (`nin_relu_only_params`; every kxk conv
       167 maps wide at full scale, 42 at a quarter, 21 at an eighth).
  Q1b  What does the ReLU after a 1x1 layer buy? NiN against the same net with
       linear 1x1 layers (the same parameters and mult-adds; each block folds into
       one kxk conv).
  Q3   NiN against a 3x3-only net at matched mult-adds (the plain net's widths
       chosen to match NiN's mult-adds within 5%: 80/160/272 at full scale, 218.9 M
       against NiN's 222.5 M per image).
  Q3c  The same at NiN's parameter count (`plain_params`, within 5%: 64/128/216 at
       full scale, 16/32/54 at a quarter, 8/16/26 at an eighth; fewer mult-adds than
       NiN: 0.48x at an eighth). The report prints each pair's parameter and mult-add ratio.
  Q5   Dropout 0.5 between NiN's blocks (the paper's) against none, under this protocol.
  Full scale only (too slow for 2 CPU cores):
  Q2a  Inception's 1x1 bottlenecks at matched mult-adds: GoogLeNet against its naive
       blocks (no reduce layers) at half their widths (1.40 G mult-adds against
       1.45 G, 6.15 M parameters against 5.87 M).
  Q3b  NiN against the airbench-class 3x3 net (configs/plain.py:airbench's net).
  Q4   Global average pooling against NiN's fully connected head (Sec. 4.6 of the paper).

Runs are listed seed by seed (every group's seed 0, then every group's seed 1, ...), so
a sweep stopped early still pairs every group on the seeds it finished.
"""

# group -> (config file:variants, overrides), for the full scale.
GROUPS = {
    'nin': ('configs/nin.py:fast', {}),
    'nin_relu_only_matched': ('configs/nin.py:fast,relu_only_matched', {}),
    'nin_relu_only_params': ('configs/nin.py:fast', {'model.blocks': '((5,(167,)),(5,(167,)),(3,(167,10)))'}),
    'nin_linear_1x1': ('configs/nin.py:fast,linear', {}),
    'plain_matched': ('configs/plain.py:fast', {'model.stages': ((80, 80), (160, 160), (272, 272))}),
    'plain_params': ('configs/plain.py:fast', {'model.stages': ((64, 64), (128, 128), (216, 216))}),
    'nin_dropout': ('configs/nin.py:fast', {'model.dropout_rate': 0.5}),
    'googlenet': ('configs/googlenet.py:fast', {}),
    'googlenet_naive_matched': ('configs/googlenet.py:fast,naive', {'model.width_divisor': 2}),
    'airbench_net': ('configs/plain.py:airbench', {'optimizer.bn_bias_lr_multiplier': 1.0}),
    'nin_fc': ('configs/nin.py:fast,fc', {}),
}

# Each question: (id, the question in words, group A, group B). The answer is A - B.
QUESTIONS = (
    ('Q1a', 'What does a 1x1 layer with ReLU buy over a ReLU alone (matched input widths)?',
     'nin', 'nin_relu_only_matched'),
    ('Q1c', 'What does a 1x1 layer with ReLU buy over a ReLU alone (matched parameters)?',
     'nin', 'nin_relu_only_params'),
    ('Q1b', 'What does the ReLU after a 1x1 layer buy (same parameters)?',
     'nin', 'nin_linear_1x1'),
    ('Q3', 'NiN against a 3x3-only net at matched mult-adds', 'nin', 'plain_matched'),
    ('Q3c', 'NiN against a 3x3-only net at matched parameters', 'nin', 'plain_params'),
    ('Q5', 'What does dropout 0.5 between the blocks do under this protocol?',
     'nin_dropout', 'nin'),
    ('Q2a', "What do Inception's 1x1 bottlenecks buy at matched mult-adds?",
     'googlenet', 'googlenet_naive_matched'),
    ('Q3b', 'NiN against the airbench-class 3x3 net', 'nin', 'airbench_net'),
    ('Q4', 'Global average pooling against a fully connected head', 'nin', 'nin_fc'),
)
CPU_QUESTIONS = ('Q1a', 'Q1c', 'Q1b', 'Q3', 'Q3c', 'Q5')
SEEDS = (0, 1, 2, 3, 4)
# The CPU rung's seeds 0 and 1 are the learning-rate grid's runs (LR_GRID_SEEDS): they chose
# each group's rate, so its questions are answered on the five seeds that chose nothing.
CPU_SEEDS = (0, 1, 2, 3, 4, 5, 6)
CPU_ANSWER_SEEDS = (2, 3, 4, 5, 6)

# The CPU budget: NiN at an eighth of its widths (17,244 parameters, 5.10 M mult-adds
# per image); the 3x3 net at widths 12/24/40 (5.35 M mult-adds, 5% more); 5 epochs of
# 45,000 images, the fast protocol's triangle peaking at 23% of them; evaluated every
# half epoch so that the report can say whether validation accuracy levelled off.
CPU_EPOCHS = 5.0
CPU_OVERRIDES = {
    'num_epochs': CPU_EPOCHS,
    'schedule.warmup_epochs': 1.15,  # 23% of 5 epochs, as the protocol's.
    'eval_every_epochs': 0.5,
}
CPU_MODEL = {
    'plain_matched': {'model.stages': ((12, 12), (24, 24), (40, 40))},
    'plain_params': {'model.stages': ((8, 8), (16, 16), (26, 26))},
    'nin_relu_only_params': {'model.blocks': '((5,(21,)),(5,(21,)),(3,(21,10)))',
                             'model.width_divisor': 1},
}
# The ladder's second rung: a quarter of the widths (NiN: 64,132 parameters, 16.7 M
# mult-adds per image), the fast protocol's own 9.9 epochs of 45,000 images, evaluated
# every half epoch. The 3x3 nets' widths match NiN's mult-adds (22/44/76: +4.5%) or its
# parameters (16/32/54: -0.8%) at this width, as at the others.
LADDER_OVERRIDES = {'eval_every_epochs': 0.5}
LADDER_MODEL = {
    'plain_matched': {'model.stages': ((22, 22), (44, 44), (76, 76))},
    'plain_params': {'model.stages': ((16, 16), (32, 32), (54, 54))},
    'nin_relu_only_params': {'model.blocks': '((5,(42,)),(5,(42,)),(3,(42,10)))',
                             'model.width_divisor': 1},
}
# Each group's peak learning rate, chosen on validation from LR_GRID at the CPU budget
# (the `lr_grid` sweep, 2 seeds; its report, docs/compare_cifar_cpu/lr_grid, names the best
# per group and tests/test_sweep.py checks that this table is what it names). The cpu and
# ladder runs train at these rates; the fast protocol's own 1.5 per 1,024 images was tuned
# for airbench's 3x3 net. The grid doubles from 0.375: at 3.0 both 3x3 nets fell to chance
# near the peak.
LR_GRID = (0.375, 0.75, 1.5, 3.0)
LR_GRID_SEEDS = (0, 1)
LEARNING_RATES = {
    'nin': 0.75,
    'nin_relu_only_matched': 1.5,
    'nin_relu_only_params': 1.5,
    'nin_linear_1x1': 0.75,
    'plain_matched': 1.5,
    'plain_params': 1.5,
    'nin_dropout': 1.5,
}
# The ladder's grid: each group at these multiples of its rate in LEARNING_RATES (one doubling
# either side), on the grid's seeds; groups in the order of the questions they decide most
# (Q3's pair first: its answer at the ladder was the one the CPU rates left in doubt).
LADDER_LR_STEPS = (0.5, 1.0, 2.0)
# Extended where a group's best sat at the grid's edge: plain_matched's 0.75 (half its CPU rate)
# beat its 1.5 on both seeds, so its grid goes on down a doubling (its 3.0, the other edge,
# fell to chance near the peak at the CPU rung).
LADDER_LR_EXTENDED = {'plain_matched': (0.25,)}
LADDER_LR_ORDER = ('plain_matched', 'nin', 'plain_params', 'nin_relu_only_matched',
                   'nin_relu_only_params', 'nin_linear_1x1', 'nin_dropout')
# The corner: the CPU rung's nets (CPU_MODEL, an eighth of NiN's widths) for the ladder's 9.9
# epochs, so that budgets.md can say per question whether width or training length moved its
# answer. It asks the questions whose answers moved or grew between the rungs.
CORNER_QUESTIONS = ('Q1a', 'Q1b', 'Q3', 'Q3c')
# Chosen on validation by the corner's own grid (`corner_lr_grid`); empty until it has run,
# and the corner sweep refuses to train at rates nobody chose for it.
CORNER_LEARNING_RATES = {}
# The rerun: the CPU rung's `nin` group, seeds 0-4, trained again from a later commit with
# the same configs, so that its runs and the committed ones differ in nothing but when (and
# from which code) they ran: how far a rerun alone moves a result (5 runs, about 25 minutes on
# 2 CPU cores). Its folder sits beside the rung's; `results.reruns` pairs them.
RERUN_GROUP = 'nin'
VARIANTS = ('', 'cpu', 'ladder', 'lr_grid', 'ladder_lr_grid', 'corner', 'corner_lr_grid',
            'rerun', 'smoke')


def check_variant(arg):
  """The variant `arg` names ('' for none); this file's and configs/sweeps/precision.py's."""
  variant = arg or ''
  if variant not in VARIANTS:
    raise ValueError(f'Unknown sweep variant {variant!r}; valid: '
                     f'{", ".join(v for v in VARIANTS if v)} (or none)')
  return variant


def get_questions(arg=None):
  """The questions this variant answers: [{'id', 'question', 'a', 'b'}], with 'seeds' (the
  seeds that answer) and 'chose' (those that chose the learning rates) where some seeds chose
  (the learning-rate grid and the rerun ask none)."""
  variant = check_variant(arg)
  if variant in ('lr_grid', 'ladder_lr_grid', 'corner_lr_grid', 'rerun'):
    return []
  seeds = ({'seeds': list(CPU_ANSWER_SEEDS), 'chose': list(LR_GRID_SEEDS)}
           if variant in ('cpu', 'corner') else {})
  asked = CORNER_QUESTIONS if variant == 'corner' else CPU_QUESTIONS
  return [{'id': q, 'question': text, 'a': a, 'b': b, **seeds} for q, text, a, b in QUESTIONS
          if variant == '' or q in asked]


def lr_group(group: str, lr: float) -> str:
  """The name of a group's run at one learning rate of the grid ('nin@lr0.75')."""
  return f'{group}@lr{lr:g}'


def _overrides(group, variant):
  config, overrides = GROUPS[group]
  overrides = dict(overrides)
  if variant in ('cpu', 'lr_grid', 'rerun'):
    overrides.update(CPU_OVERRIDES)
    overrides.update(CPU_MODEL.get(group, {'model.width_divisor': 8}))
  elif variant in ('corner', 'corner_lr_grid'):
    overrides.update(LADDER_OVERRIDES)
    overrides.update(CPU_MODEL.get(group, {'model.width_divisor': 8}))
  elif variant in ('ladder', 'ladder_lr_grid'):
    overrides.update(LADDER_OVERRIDES)
    overrides.update(LADDER_MODEL.get(group, {'model.width_divisor': 4}))
  elif variant == 'smoke':
    config += ',digits'
    overrides.update({'num_train_steps': 3, 'eval_every_epochs': 1.0})
  if group in LEARNING_RATES and variant in ('cpu', 'ladder', 'rerun'):
    overrides['optimizer.learning_rate'] = LEARNING_RATES[group]
  if variant == 'corner':
    overrides['optimizer.learning_rate'] = CORNER_LEARNING_RATES[group]
  return config, overrides


def get_sweep(arg=None):
  variant = check_variant(arg)
  asks = {'lr_grid': 'cpu', 'rerun': 'cpu', 'ladder_lr_grid': 'ladder', 'corner_lr_grid': 'corner'}
  groups = list(dict.fromkeys(g for q in get_questions(asks.get(variant, arg))
                              for g in (q['a'], q['b'])))
  runs = []
  if variant == 'rerun':
    return [{'group': RERUN_GROUP, 'seed': seed, 'config': _overrides(RERUN_GROUP, variant)[0],
             'overrides': _overrides(RERUN_GROUP, variant)[1]} for seed in SEEDS]
  if variant == 'corner' and set(CORNER_LEARNING_RATES) != set(groups):
    raise ValueError('questions.py:corner trains each group at the rate its own grid chose, '
                     'and CORNER_LEARNING_RATES does not name them all yet: run '
                     'questions.py:corner_lr_grid and copy its report\'s choices in')
  if variant in ('ladder_lr_grid', 'corner_lr_grid'):
    for group in (g for g in LADDER_LR_ORDER if g in groups):
      extended = LADDER_LR_EXTENDED.get(group, ()) if variant == 'ladder_lr_grid' else ()
      for step in LADDER_LR_STEPS + extended:
        for seed in LR_GRID_SEEDS:
          lr = LEARNING_RATES[group] * step
          config, overrides = _overrides(group, variant)
          runs.append({'group': lr_group(group, lr), 'seed': seed, 'config': config,
                       'overrides': {**overrides, 'optimizer.learning_rate': lr}})
    return runs
  if variant == 'lr_grid':
    for seed in LR_GRID_SEEDS:
      for group in groups:
        for lr in LR_GRID:
          config, overrides = _overrides(group, variant)
          runs.append({'group': lr_group(group, lr), 'seed': seed, 'config': config,
                       'overrides': {**overrides, 'optimizer.learning_rate': lr}})
    return runs
  for seed in SEEDS[:2] if variant == 'smoke' else CPU_SEEDS if variant in ('cpu', 'corner') \
      else SEEDS:
    for group in groups:
      config, overrides = _overrides(group, variant)
      runs.append({'group': group, 'seed': seed, 'config': config, 'overrides': overrides})
  return runs
