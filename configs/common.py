"""The shared base of every config, and helpers for `file.py:variant` args.

Every field a user may override on the command line exists here with a typed
default, so that a misspelt `--config.x.y=...` is an error, not a silent no-op.

The defaults below are the one training protocol that every family's default
config uses, so that a comparison table differs only in architecture:
BatchNorm after every conv (set by each family), SGD with Nesterov momentum
0.9, peak learning rate 0.1 after a 1-epoch linear warmup, cosine decay over
150 epochs, weight decay 5e-4 on kernels, batch 128, random crop (4-pixel
padding) and horizontal flip, 5,000 training images held out for validation.
Each family's `paper` variant keeps that paper's own recipe instead.

`fast` is a second protocol, airbench94's training recipe (Jordan 2024,
arXiv:2404.00498) without its network, for every family: about 10 epochs at
batch 1024, Nesterov SGD with a triangular schedule, a 64x learning rate for
BatchNorm biases, label smoothing 0.2, lookahead weight averaging, alternating
flips, 2-pixel reflect translations, and test-time augmentation
(`fast` below says where each number comes from).
"""
import ml_collections


def parse_variants(arg, valid):
  """'relu_only,digits' -> ['relu_only', 'digits'], each checked against `valid`."""
  variants = [v for v in (arg or '').split(',') if v]
  for v in variants:
    if v not in valid:
      raise ValueError(f'Unknown config variant {v!r}; valid: {", ".join(sorted(valid))}')
  return variants


def get_base_config():
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.name = 'nin'
  c.model.num_classes = 10
  c.model.impl = 'dense'          # How 1x1 layers run: dense | conv | einsum.
  c.model.pool_impl = 'auto'      # How pooling runs: auto (taps on CPU, xla elsewhere) | taps | xla.

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = 'cifar10'      # cifar10 | cifar100 | digits | synthetic
  c.dataset.data_dir = ''         # TFDS data dir; '' means TFDS's default (~/tensorflow_datasets).
  c.dataset.manual_dir = ''       # Folder holding cifar-10-binary.tar.gz for offline preparation.
  # CIFAR-10 from a folder ROOT/{train,test}/<class>/*.png|jpg instead of TFDS ('' : TFDS);
  # decoded once and cached (nin/data/image_folder.py). TFDS and TensorFlow are then not needed.
  c.dataset.image_dir = ''
  c.dataset.verify_checksum = True  # False: accept a manual_dir tarball that is not the official file.
  c.dataset.image_size = 32
  # Held out of the training split (fixed and class-balanced: nin.data.datasets.validation_indices):
  # periodic evaluation and the best checkpoint use it; the test split is evaluated once,
  # at the end. 0 trains on the whole training split (the papers' final retrain).
  c.dataset.validation_examples = 5000
  c.dataset.num_train = 0         # >0: keep only the first N training examples (after the hold-out).
  c.dataset.synthetic_train = 50_000
  c.dataset.synthetic_test = 10_000
  c.dataset.synthetic_classes = 10
  c.dataset.crop_padding = 4      # Random crop after padding by this many pixels; 0 disables.
  c.dataset.flip = True           # Random horizontal flips.
  # With flip: each image mirrored on every other epoch (a random half of the images on
  # even epochs, the other half on odd ones) instead of at random (airbench's).
  c.dataset.alternate_flips = False
  c.dataset.pad_mode = 'zeros'    # zeros | reflect: how the crop's padding is filled.
  c.dataset.cutout = 0            # Side of a random zeroed square; 0 disables.
  # standardize (per channel) | gcn_zca (the NiN paper's: nin/data/preprocess.py); fitted on the
  # training examples only and saved in the workdir.
  c.dataset.preprocess = 'standardize'
  c.dataset.zca_epsilon = 0.1     # gcn_zca: added to the covariance's eigenvalues.

  c.batch_size = 128              # Global batch, split over all devices of all hosts.
  c.eval_batch_size = 500
  c.num_epochs = 150.0
  c.num_train_steps = -1          # >0 overrides num_epochs.
  c.stop_after_steps = -1         # >0: stop there, keeping the schedule of the whole run.

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'sgd'        # sgd | adamw
  c.optimizer.learning_rate = 0.1
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = True
  c.optimizer.weight_decay = 5e-4  # Applied to kernels only, not to biases or BatchNorm.
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.grad_clip_norm = 0.0  # >0: clip the global gradient norm.
  c.optimizer.decay_all = False   # True: weight decay on every trained parameter (airbench).
  # Normalisation biases (a bias with no kernel beside it) learn this much faster, at the
  # same effective weight decay (SGD: their gradient is scaled; AdamW: their update).
  c.optimizer.bn_bias_lr_multiplier = 1.0
  c.optimizer.frozen = ''         # Regex of parameter paths never updated, e.g. 'whiten/kernel'.
  c.optimizer.freeze_after = ''   # Regex of parameter paths updated only in the first
  c.optimizer.freeze_after_epochs = 0.0  # ... this many epochs.
  # Lookahead (airbench's weight averaging): every N steps (0: off) the weights move to
  # their running average (nin.train.steps.lookahead_step), whose weight grows to decay**N.
  c.optimizer.lookahead_every = 0
  c.optimizer.lookahead_decay = 0.95
  # 'regex=factor,...': gradients of the SGD-side parameters whose path matches scaled
  # (the first match wins), before the coupled decay: a per-parameter learning rate.
  c.optimizer.lr_multipliers = ''
  # Muon (optimizer.name='muon', nin/train/optim.py): kernels of rank >= 2 that do not output
  # class scores step along their orthogonalised momentum at `learning_rate`; the rest
  # (biases, BatchNorm, the classifier) take SGD at `sgd_learning_rate` with `momentum`,
  # `nesterov`, `weight_decay` and the multipliers above, on the same schedule shape.
  c.optimizer.sgd_learning_rate = 0.1
  c.optimizer.muon_momentum = 0.6
  c.optimizer.muon_ns_steps = 3    # Newton-Schulz steps (airbench94_muon's; optax's default is 5).
  c.optimizer.muon_normalize = True  # Each Muon kernel rescaled to norm sqrt(fan_out) first.

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = 'cosine'      # constant | cosine | piecewise | onecycle
  c.schedule.warmup_epochs = 1.0
  c.schedule.boundaries_epochs = (0.5, 0.75)  # piecewise: fractions of training if <=1, else epochs.
  c.schedule.decay_factor = 0.1
  c.schedule.initial_factor = 0.0  # The warmup starts at this times the peak rate.
  c.schedule.final_factor = 0.0    # triangle: the rate falls linearly to this times the peak.

  c.label_smoothing = 0.0
  c.dtype = 'float32'             # float32 | bfloat16 (compute; parameters stay float32)
  # The same config and seed give the same metrics bit for bit: on the CPU always; on a GPU
  # only with this (XLA's deterministic operations, nin/runtime/determinism.py).
  c.deterministic = False
  # Test-time augmentation of the final evaluations, reported beside the plain figures:
  # 0 none, 1 the mirror too, 2 also 1-pixel shifts (nin.train.steps.tta_logits).
  c.tta = 0
  # Before each evaluation, BatchNorm's statistics recomputed over this many training
  # batches with the current weights (nin.train.passes.recompute_batch_stats); 0 keeps the
  # running averages. The fast protocol needs it: see `fast`.
  c.bn_stats_batches = 0

  c.log_every_steps = 50
  c.eval_every_epochs = 1.0
  c.keep_checkpoints = 3          # The last N, plus the best by validation accuracy.
  return c


def nin_paper_recipe(c):
  """The NiN paper's training recipe, as far as it is specified (configs/nin.py says more)."""
  c.model.use_bn = False
  c.num_epochs = 150.0
  c.optimizer.learning_rate = 0.05
  c.optimizer.nesterov = False
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = 'piecewise'
  c.schedule.boundaries_epochs = (0.5, 0.75)
  c.schedule.warmup_epochs = 2.0
  return c


def check_fast(variants):
  """`fast` is a whole recipe: it does not combine with another one or a shortened run."""
  clash = sorted({'paper', 'reference', 'cpu'} & set(variants))
  if clash:
    raise ValueError(f'Config variant fast does not combine with {", ".join(clash)}')


def fast(c, batch_size=1024):
  """airbench94's recipe (its `hyp` settings), in this project's terms.

  airbench sums the loss over a batch of 1024 and states its rates per 1024
  examples: learning rate 11.5 and weight decay 0.0153, divided by
  1 + 1/(1 - momentum) for momentum 0.85. With a mean loss that is a learning
  rate of 11.5 / (1 + 1/0.15) = 1.5 per 1024 examples (scaled linearly for
  another batch size) and a coupled weight decay of 0.0153 / 11.5 on every
  parameter. Schedule: linear from 0.2x to 1x the peak over the first 23% of
  training, then linear to 0.07x. Label smoothing 0.2. Lookahead every 5
  steps. Alternating flips, 2-pixel translations with reflect padding,
  test-time augmentation level 2. 9.9 epochs, as airbench94; here of the
  45,000 images left after the validation hold-out (airbench trains on all 50,000).
  No dropout anywhere, as in airbench: regularisation is the protocol's, the
  same for every family (call this after the family has set its model fields).

  Not in the protocol: airbench's 64x learning rate for BatchNorm biases
  (`optimizer.bn_bias_lr_multiplier`), which configs/plain.py:airbench keeps
  for its own GELU net. With it, NiN (ReLU, a quarter of its widths, real
  CIFAR-10) stayed at chance: 10.0% validation accuracy at step 50, against
  38.7% without it (docs/time_to_accuracy/probes).
  """
  for field in ('dropout_rate', 'head_dropout_rate'):
    if field in c.model:
      c.model[field] = 0.0
  # BatchNorm's running statistics follow the last few batches, as airbench's (0.6):
  # with the default 0.9 they lag weights that move fast at this learning rate, and
  # evaluation with them failed (GoogLeNet at an eighth of its widths, real CIFAR-10:
  # 17% validation accuracy at step 129 while training accuracy was 55%;
  # docs/time_to_accuracy/googlenet_fast_eighth).
  c.model.bn_momentum = 0.6
  # Even so, at this learning rate the running averages lag the weights: NiN at an eighth
  # of its widths (real CIFAR-10, step 88 of 215) scored 29.1% on the validation images
  # with them, predicting two classes for 3,266 of the 5,000, while its last training
  # batches scored 46.3%; with statistics recomputed from 4 training batches, 46.4%, the
  # training steps being the same (docs/time_to_accuracy/probes/nin_eighth_bn_stats_*).
  c.bn_stats_batches = 4
  c.batch_size = batch_size
  c.eval_batch_size = 1000
  c.num_epochs = 9.9
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 1.5 * batch_size / 1024
  c.optimizer.momentum = 0.85
  c.optimizer.nesterov = True
  c.optimizer.weight_decay = 0.0153 / 11.5
  c.optimizer.decay_all = True
  c.optimizer.lookahead_every = 5
  c.optimizer.lookahead_decay = 0.95
  c.schedule.name = 'triangle'
  c.schedule.warmup_epochs = 0.23 * c.num_epochs
  c.schedule.initial_factor = 0.2
  c.schedule.final_factor = 0.07
  c.label_smoothing = 0.2
  c.dataset.crop_padding = 2
  c.dataset.pad_mode = 'reflect'
  c.dataset.flip = True
  c.dataset.alternate_flips = True
  c.tta = 2
  c.eval_every_epochs = 1.0
  c.log_every_steps = 10
  return c


def check_muon(variants):
  """`muon` is an optimizer choice of the fast protocol, not a recipe of its own."""
  if 'fast' not in variants:
    raise ValueError(f'Config variant muon needs fast (it changes the fast protocol\'s '
                     f'optimizer), got {",".join(variants)}')


def fast_muon(c):
  """The fast protocol with Muon (Jordan 2024) on its hidden kernels.

  airbench94_muon's Muon settings (KellerJordan/cifar10-airbench,
  airbench94_muon.py): learning rate 0.24, Nesterov momentum 0.6, 3
  Newton-Schulz steps, each kernel rescaled to norm sqrt(fan_out) before its
  step and not decayed. Everything else stays the protocol's: its schedule
  shape, batch and epochs, and its SGD (rate, momentum, decay) for the
  parameters Muon does not take (biases, BatchNorm, the classifier). Call it
  last, after `fast` and the dataset's settings.
  """
  o = c.optimizer
  o.sgd_learning_rate = o.learning_rate
  o.name = 'muon'
  o.learning_rate = 0.24
  o.muon_momentum = 0.6
  o.muon_ns_steps = 3
  o.muon_normalize = True
  return c


def digits(c, keep_recipe=False):
  """The small real dataset shipped with scikit-learn: learns in a minute on a CPU.

  `keep_recipe`: change the data only (for the `fast` protocol, which then sets
  its own batch size).
  """
  c.dataset.name = 'digits'
  c.dataset.validation_examples = 300  # Of 1,497 training digits.
  c.dataset.crop_padding = 2
  c.dataset.flip = False          # Mirrored digits are other digits.
  c.dataset.alternate_flips = False
  c.tta = 0                       # Its mirror views would be other digits too.
  c.eval_batch_size = 300
  if keep_recipe:
    return c
  c.batch_size = 64
  c.num_epochs = 10.0
  c.optimizer.learning_rate = 0.05
  c.schedule.name = 'cosine'
  c.schedule.warmup_epochs = 1.0
  c.log_every_steps = 10
  c.eval_every_epochs = 2.0
  return c


def cifar_cpu(c):
  """Real CIFAR-10 on a 2-core CPU: the one protocol, shortened (the models narrow themselves).

  15,000 training images (after the usual 5,000-image validation hold-out; the
  full 10,000-image test split), 6 epochs with the protocol's 1-epoch warmup
  and cosine decay, peak rate 0.1. Everything else is the protocol's own.
  """
  c.dataset.num_train = 15_000
  c.num_epochs = 6.0
  c.eval_every_epochs = 2.0
  c.log_every_steps = 25
  return c


def smoke(c):
  """A few steps on small synthetic data: checks that everything runs."""
  c.dataset.name = 'synthetic'
  c.dataset.synthetic_train = 312
  c.dataset.synthetic_test = 100
  c.dataset.validation_examples = 56  # Leaves 256 for training: 8 steps of 32.
  c.batch_size = 32
  c.eval_batch_size = 20
  c.num_epochs = 1.0
  c.log_every_steps = 2
  return c
