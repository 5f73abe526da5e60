"""Evaluation of a finished (or running) workdir: the library behind eval.py.

    from nin.evaluation import evaluate
    run = evaluate.load_run('runs/nin_digits')            # config, model, variables
    result = evaluate.evaluate_run('runs/nin_digits', which='best', tta=1)

`which='best'` is the checkpoint with the best validation accuracy; the split
evaluated is the test split unless `split='validation'`.
"""
import collections
import dataclasses
import functools
import json
import time
from typing import Any

import jax
import numpy as np

from nin.train import checkpoint, optim, passes, run_config, steps
from nin import data
from nin.runtime import distributed
from nin.data import pipeline, preprocess
from nin import workdir as workdir_lib
from nin.errors import ConfigError
from nin.train.validate import TTA_LEVELS

CHOICES = ('latest', 'best')
SPLITS = ('test', 'validation')


@dataclasses.dataclass
class Run:
  workdir: str
  config: Any
  model: Any
  state: Any      # A steps.TrainState; `variables` gives what `model.apply` needs.
  step: int

  @property
  def variables(self):
    return steps.variables_of(self.state)


def load_run(workdir: str, which: str = 'latest', mesh=None) -> Run:
  """The config saved in `workdir` and the state of its latest or best checkpoint."""
  if which not in CHOICES:
    raise ConfigError(f'Unknown checkpoint choice {which!r}; valid: {", ".join(CHOICES)}')
  config = run_config.load(workdir)
  mesh = mesh or distributed.make_mesh()
  model = steps.model_for(config)
  tx = optim.make_optimizer(config, optim.make_schedule(config, 1, 2))
  size = config.dataset.image_size
  # The checkpoint overwrites every array, so no data-fitted parameter needs the data here.
  init = functools.partial(steps.initial_state_fn(config, model, tx, (size, size, 3), mesh,
                                                  fit_data=False), config.seed, None)
  validating = config.dataset.validation_examples > 0
  if which == 'best' and not validating:
    raise ConfigError(f'{workdir} was trained without a validation split '
                      f'(dataset.validation_examples=0), so it has no best checkpoint; '
                      f'use the latest')
  state, step = _restore(workdir, init, which)
  return Run(workdir, config, model, state, step)


def _restore(workdir, init, which, patience_sec=60.0):
  """Reads the latest or best complete checkpoint, changing nothing in the workdir.

  Beside a running train.py, the step chosen may be deleted (superseded) while it
  is read: then the choice is made again from what is on disk by then. A step
  that fails twice while still complete does not fit the model.
  """
  deadline, failures = time.time() + patience_sec, collections.Counter()
  settle = time.time() + 5.0  # How long an incomplete step may be one being replaced.
  target = None  # Initialised once, and only when there is a step to read into.
  while True:
    complete = checkpoint.complete_steps(workdir)
    if not complete and checkpoint.finalized_steps(workdir) and time.time() < settle:
      time.sleep(0.05)  # The only step is being replaced: its successor is nearly written.
      continue
    if not complete:
      raise FileNotFoundError(f'{workdir} holds no checkpoint yet')
    step = checkpoint.best_step(workdir, complete) if which == 'best' else complete[-1]
    if step is None and checkpoint.complete_steps(workdir) != complete and (
        time.time() < deadline):
      continue  # A step listed was superseded before its score was read: choose again.
    if step is None:
      raise FileNotFoundError(f'{workdir} holds no checkpoint with a validation score yet '
                              f'(the latest, step {complete[-1]}, has none): use --checkpoint=latest')
    target = init() if target is None else target
    try:
      if not checkpoint.fits(workdir, step, target):
        raise ValueError('the saved arrays have other shapes')
      return checkpoint.read(workdir, step, target), step
    except Exception as e:  # Orbax raises many types for a tree that does not match.
      failures[step] += 1
      if failures[step] >= 2 and step in checkpoint.complete_steps(workdir):
        raise ConfigError(f'The checkpoint at step {step} in {workdir} does not fit the model '
                          f'of its config.json ({type(e).__name__}: '
                          f'{str(e).splitlines()[0][:160] if str(e) else ""})') from None
      if time.time() > deadline:
        raise FileNotFoundError(f'The checkpoints in {workdir} kept changing while they were '
                                f'read (a run is saving there); run the same command again')
      time.sleep(0.2)


def evaluate_run(workdir: str, which: str = 'latest', tta: int = 0,
                 data_dir: str = '', write: bool = True, split: str = 'test',
                 class_maps: int = 0) -> dict:
  """Loss, accuracy, per-class accuracy and confusion matrix of a checkpoint on a split.

  With `tta` (1: and the mirror, 2: and 1-pixel shifts; `steps.tta_logits`) the
  figures are those of the augmented predictions, and `*_accuracy_plain`
  gives the accuracy without. Writes `eval_<which>[_validation][_tta<level>].json`
  and a confusion-matrix PNG into the workdir. Keys are prefixed by the split:
  `test_accuracy` or `val_accuracy`. `class_maps=N` (a NiN only) also writes the class
  maps of the first N test images (nin.evaluation.class_maps.write_pngs); `class_map_pngs` lists them.
  """
  if split not in SPLITS:
    raise ConfigError(f'Unknown split {split!r}; valid: {", ".join(SPLITS)}')
  if tta not in TTA_LEVELS:
    raise ConfigError(f'Unknown test-time augmentation level {tta!r}; valid: '
                      f'{", ".join(map(str, TTA_LEVELS))}')
  distributed.initialize()
  mesh = distributed.make_mesh()
  run = load_run(workdir, which, mesh)
  if write and jax.process_index() == 0:  # Refused before the evaluation, not after it.
    workdir_lib.check_writable(workdir, 'the workdir eval.py writes its results to')
  if class_maps:
    from nin.evaluation import class_maps as class_maps_lib  # matplotlib, only when asked for.
    class_maps_lib.check_nin(run)  # Refused before anything is computed.
  if split == 'validation' and not run.config.dataset.validation_examples:
    raise ConfigError(f'{workdir} was trained without a validation split '
                      f'(dataset.validation_examples=0)')
  cfg = run.config.dataset
  if data_dir:
    cfg = cfg.copy_and_resolve_references()
    cfg.data_dir = data_dir
  dataset = data.load(cfg)
  transform = preprocess.for_run(run.config, workdir, dataset)
  pipe = pipeline.Pipeline.from_config(dataset, mesh, run.config, transform, augment=False)
  _, eval_fn = steps.compile_steps(run.config, mesh, dataset.num_classes, tta)
  result = passes.evaluate_split(eval_fn, run.state, pipe, split)
  p = passes.PREFIX[split]
  if tta:  # The augmented figures are the result; the plain accuracy stays beside them.
    plain = {k: result.pop(k) for k in (f'{p}_loss', f'{p}_accuracy', 'confusion')}
    result.update({f'{p}_accuracy_plain': plain[f'{p}_accuracy'],
                   f'{p}_loss': result.pop(f'{p}_loss_tta'),
                   f'{p}_accuracy': result.pop(f'{p}_accuracy_tta'),
                   'confusion': result.pop('confusion_tta')})
  predicted = passes.predicted_counts(result)
  confusion = result.pop('confusion')
  per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
  result.update(step=run.step, checkpoint=which, split=split, tta=tta,
                class_names=list(dataset.class_names),
                per_class_accuracy=[float(a) for a in per_class],
                predicted_counts=predicted, confusion=confusion.tolist(),
                trained_with_flips=bool(run.config.dataset.flip))
  if write and jax.process_index() == 0:
    stem = workdir_lib.eval_stem(workdir, which, split, tta)
    with open(stem + '.json', 'w') as f:
      json.dump(result, f, indent=1)
    plot_confusion(confusion, dataset.class_names, stem + '_confusion.png',
                   title=f'{run.config.model.name}, step {run.step}: '
                         f'{result[passes.PREFIX[split] + "_accuracy"]:.2%} {split} accuracy')
  if class_maps and jax.process_index() == 0:
    result['class_map_pngs'] = class_maps_lib.write_pngs(run, dataset, which, class_maps,
                                                         transform=transform)
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
