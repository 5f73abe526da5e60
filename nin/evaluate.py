"""Evaluation of a finished (or running) workdir: the library behind eval.py.

    from nin import evaluate
    run = evaluate.load_run('runs/nin_digits')            # config, model, variables
    result = evaluate.evaluate_run('runs/nin_digits', which='best', flip_tta=True)

`which='best'` is the checkpoint with the best validation accuracy; the split
evaluated is the test split unless `split='validation'`.
"""
import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np

from nin import checkpoint, data, distributed, optim, pipeline, train
from nin import workdir as workdir_lib
from nin.errors import ConfigError

CHOICES = ('latest', 'best')
SPLITS = ('test', 'validation')


@dataclasses.dataclass
class Run:
  workdir: str
  config: Any
  model: Any
  state: Any      # A train.TrainState; `variables` gives what `model.apply` needs.
  step: int

  @property
  def variables(self):
    return train.variables_of(self.state)


def load_run(workdir: str, which: str = 'latest', mesh=None) -> Run:
  """The config saved in `workdir` and the state of its latest or best checkpoint."""
  if which not in CHOICES:
    raise ConfigError(f'Unknown checkpoint choice {which!r}; valid: {", ".join(CHOICES)}')
  config = workdir_lib.load_config(workdir)
  mesh = mesh or distributed.make_mesh()
  model = train.model_for(config)
  tx = optim.make_optimizer(config, optim.make_schedule(config, 1, 2))
  size = config.dataset.image_size
  init = jax.jit(lambda: train.create_train_state(model, tx, (size, size, 3), config.seed),
                 out_shardings=distributed.replicated(mesh))
  validating = config.dataset.get('validation_examples', 0) > 0
  if which == 'best' and not validating:
    raise ConfigError(f'{workdir} was trained without a validation split '
                      f'(dataset.validation_examples=0), so it has no best checkpoint; '
                      f'use the latest')
  if not os.path.isdir(os.path.join(workdir, workdir_lib.CHECKPOINTS)):
    raise FileNotFoundError(f'{workdir} holds no checkpoint yet')
  ckpt = checkpoint.Checkpointer(workdir, keep_best=validating)  # Restores only: nothing is deleted.
  try:
    state, step = _restore(ckpt, init, workdir, which)
  except BaseException:
    try:  # The error that matters is the one above, not a failing close after it.
      ckpt.close()
    except Exception:  # noqa: BLE001
      pass
    raise
  ckpt.close()
  return Run(workdir, config, model, state, step)


def _restore(ckpt, init, workdir, which):
  latest = ckpt.latest_step()
  step = ckpt.best_step() if which == 'best' else latest
  if latest is None:
    raise FileNotFoundError(f'{workdir} holds no checkpoint yet')
  if step is None:
    raise FileNotFoundError(f'{workdir} holds no checkpoint with a validation score yet '
                            f'(the latest, step {latest}, has none): use --checkpoint=latest')
  target = init()
  try:
    if not ckpt.fits(step, target):
      raise ValueError('the saved arrays have other shapes')
    return ckpt.restore(target, step=step)
  except Exception as e:  # Orbax raises many types for a tree that does not match.
    raise ConfigError(f'The checkpoint at step {step} in {workdir} does not fit the model '
                      f'of its config.json ({type(e).__name__}: '
                      f'{str(e).splitlines()[0][:160] if str(e) else ""})') from None


def evaluate_run(workdir: str, which: str = 'latest', flip_tta: bool = False,
                 data_dir: str = '', write: bool = True, split: str = 'test') -> dict:
  """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint on a split.

  Writes `eval_<which>[_validation][_tta].json` and a confusion-matrix PNG into
  the workdir. Keys are prefixed by the split: `test_accuracy` or `val_accuracy`.
  """
  if split not in SPLITS:
    raise ConfigError(f'Unknown split {split!r}; valid: {", ".join(SPLITS)}')
  distributed.initialize()
  mesh = distributed.make_mesh()
  run = load_run(workdir, which, mesh)
  if split == 'validation' and not run.config.dataset.get('validation_examples', 0):
    raise ConfigError(f'{workdir} was trained without a validation split '
                      f'(dataset.validation_examples=0)')
  cfg = run.config.dataset
  if data_dir:
    cfg = cfg.copy_and_resolve_references()
    cfg.data_dir = data_dir
  dataset = data.load(cfg)
  pipe = pipeline.Pipeline(dataset, mesh, run.config.batch_size, run.config.eval_batch_size,
                           run.config.seed, crop_padding=0, flip=False,
                           transform=workdir_lib.transform(run.config, workdir, dataset))
  _, eval_fn = train.compile_steps(run.config, mesh, dataset.num_classes, flip_tta)
  result = train.evaluate_split(eval_fn, run.state, pipe, split)
  predicted = train.predicted_counts(result)
  confusion = result.pop('confusion')
  per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
  result.update(step=run.step, checkpoint=which, split=split, flip_tta=flip_tta,
                class_names=list(dataset.class_names),
                per_class_accuracy=[float(a) for a in per_class],
                predicted_counts=predicted, confusion=confusion.tolist())
  if write and jax.process_index() == 0:
    stem = os.path.join(workdir, f'eval_{which}' + ('_validation' if split == 'validation' else '')
                        + ('_tta' if flip_tta else ''))
    with open(stem + '.json', 'w') as f:
      json.dump(result, f, indent=1)
    plot_confusion(confusion, dataset.class_names, stem + '_confusion.png',
                   title=f'{run.config.model.name}, step {run.step}: '
                         f'{result[train.PREFIX[split] + "_accuracy"]:.2%} {split} accuracy')
  return result


def plot_confusion(confusion, class_names, path, title=''):
  """The confusion matrix (rows: true class) as a PNG, via scikit-learn's display."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from sklearn.metrics import ConfusionMatrixDisplay
  n = len(class_names)
  fig, ax = plt.subplots(figsize=(1 + 0.5 * n, 1 + 0.5 * n) if n <= 20 else (12, 12))
  display = ConfusionMatrixDisplay(np.asarray(confusion), display_labels=class_names if n <= 20 else None)
  display.plot(ax=ax, cmap='Blues', colorbar=False, include_values=n <= 20, xticks_rotation=90,
               text_kw={'fontsize': 7})
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
