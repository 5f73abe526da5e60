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
  c.dataset.verify_checksum = True  # False: accept a manual_dir tarball that is not the official file.
  c.dataset.image_size = 32
  # Held out of the training split (fixed and class-balanced: nin.data.validation_indices):
  # periodic evaluation and the best checkpoint use it; the test split is evaluated once,
  # at the end. 0 trains on the whole training split (the papers' final retrain).
  c.dataset.validation_examples = 5000
  c.dataset.num_train = 0         # >0: keep only the first N training examples (after the hold-out).
  c.dataset.synthetic_train = 50_000
  c.dataset.synthetic_test = 10_000
  c.dataset.synthetic_classes = 10
  c.dataset.crop_padding = 4      # Random crop after padding by this many pixels; 0 disables.
  c.dataset.flip = True           # Random horizontal flips.
  c.dataset.cutout = 0            # Side of a random zeroed square; 0 disables.
  # standardize (per channel) | gcn_zca (the NiN paper's: nin/preprocess.py); fitted on the
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

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = 'cosine'      # constant | cosine | piecewise | onecycle
  c.schedule.warmup_epochs = 1.0
  c.schedule.boundaries_epochs = (0.5, 0.75)  # piecewise: fractions of training if <=1, else epochs.
  c.schedule.decay_factor = 0.1

  c.label_smoothing = 0.0
  c.dtype = 'float32'             # float32 | bfloat16 (compute; parameters stay float32)

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


def digits(c):
  """The small real dataset shipped with scikit-learn: learns in a minute on a CPU."""
  c.dataset.name = 'digits'
  c.dataset.validation_examples = 300  # Of 1,497 training digits.
  c.dataset.crop_padding = 2
  c.dataset.flip = False          # Mirrored digits are other digits.
  c.batch_size = 64
  c.eval_batch_size = 300
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
