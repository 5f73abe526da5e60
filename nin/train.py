"""Training and evaluation: small pure steps, and the loop that drives them.

    from nin import train
    from configs import nin
    final = train.train_and_evaluate(nin.get_config('digits'), 'runs/nin_digits')

The loop, top to bottom: check the config, check the workdir, load data onto
the devices, build model and optimizer, resume from the latest checkpoint,
then train, evaluating on the validation split and checkpointing every
`eval_every_epochs` (the best checkpoint is the best by validation accuracy).
The test split is evaluated once, at the end. Batches
and dropout keys are functions of the step, so a resumed run repeats an
uninterrupted one exactly. SIGTERM/SIGINT save a checkpoint and stop cleanly;
a non-finite loss stops the run before anything bad is saved.
"""
import functools
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from jax.experimental import multihost_utils

from nin import checkpoint, data, distributed, metrics, optim, pipeline, registry
from nin import workdir as workdir_lib
from nin.errors import Interrupted, NonFiniteLoss
from nin.validate import validate

_DROPOUT_KEY = 2


class TrainState(train_state.TrainState):
  batch_stats: Any = None


# ----------------------------------------------------------------------------- steps

def model_for(config):
  """The model `config` trains, computing in its dtype (parameters stay float32)."""
  dtype = jnp.bfloat16 if config.dtype == 'bfloat16' else jnp.float32
  return registry.build_model(config.model, dtype=dtype)


def create_train_state(model, tx, image_shape, seed: int) -> TrainState:
  variables = model.init(jax.random.key(seed), jnp.zeros((1, *image_shape), jnp.float32))
  return TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                           batch_stats=variables.get('batch_stats'))


def variables_of(state):
  """What `model.apply` needs from a state: parameters, and BatchNorm statistics if any."""
  v = {'params': state.params}
  if state.batch_stats is not None:
    v['batch_stats'] = state.batch_stats
  return v


def train_step(state: TrainState, images, labels, *, dropout_key, num_classes: int,
               label_smoothing: float = 0.0):
  """One SGD step; returns the new state and this step's loss and accuracy."""
  key = jax.random.fold_in(dropout_key, state.step)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {**variables_of(state), 'params': params}, images, train=True,
        rngs={'dropout': key}, mutable=['batch_stats'])
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    return loss, (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads, batch_stats=updates.get('batch_stats'))
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return state, {'loss': loss, 'accuracy': accuracy}


def eval_step(state: TrainState, images, labels, mask, *, num_classes: int, flip_tta=False):
  """Sums over the unmasked examples: loss, correct predictions, count, confusion."""
  probs = jax.nn.softmax(state.apply_fn(variables_of(state), images, train=False))
  if flip_tta:  # Average with the mirrored image's prediction.
    probs = 0.5 * (probs + jax.nn.softmax(
        state.apply_fn(variables_of(state), images[:, :, ::-1], train=False)))
  m = mask.astype(jnp.float32)
  loss = -jnp.log(jnp.take_along_axis(probs, labels[:, None], -1)[:, 0] + 1e-12)
  preds = jnp.argmax(probs, -1)
  confusion = jax.nn.one_hot(labels, num_classes).T @ (jax.nn.one_hot(preds, num_classes) * m[:, None])
  return {'loss_sum': jnp.sum(loss * m), 'correct': jnp.sum((preds == labels) * m),
          'count': jnp.sum(m), 'confusion': confusion}


# How metrics of each evaluation split are named in records: val_accuracy, test_loss, ...
PREFIX = {'validation': 'val', 'test': 'test'}


def evaluate_split(eval_fn, state, pipe: pipeline.Pipeline, split: str = 'test') -> dict:
  """Loss, accuracy and confusion matrix (rows: true class) over the whole split.

  Keys are prefixed by the split (`val_accuracy`, `test_loss`, ...); `count` and
  `confusion` are not.
  """
  sums = None
  for images, labels, mask in pipe.eval_batches(split):
    out = eval_fn(state, images, labels, mask)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  sums = jax.device_get(sums)
  p = PREFIX[split]
  return {f'{p}_loss': float(sums['loss_sum'] / sums['count']),
          f'{p}_accuracy': float(sums['correct'] / sums['count']),
          'count': int(sums['count']), 'confusion': np.asarray(sums['confusion'], np.int64)}


def predicted_counts(result) -> list:
  """How often each class was predicted: a collapsed model predicts one class everywhere."""
  return [int(n) for n in np.asarray(result['confusion']).sum(0)]


def compile_steps(config, mesh, num_classes, flip_tta=False):
  """The jitted train and eval steps, with explicit shardings for the mesh."""
  rep, batch = distributed.replicated(mesh), distributed.batch_sharded(mesh)
  dropout_key = jax.random.fold_in(jax.random.key(config.seed), _DROPOUT_KEY)
  step = functools.partial(train_step, dropout_key=dropout_key, num_classes=num_classes,
                           label_smoothing=config.label_smoothing)
  train_fn = jax.jit(step, in_shardings=(rep, batch, batch), out_shardings=(rep, rep),
                     donate_argnums=0)
  eval_fn = jax.jit(functools.partial(eval_step, num_classes=num_classes, flip_tta=flip_tta),
                    in_shardings=(rep, batch, batch, batch), out_shardings=rep)
  return train_fn, eval_fn


# ----------------------------------------------------------------------------- the loop

def train_and_evaluate(config, workdir: str, *, overwrite=False, allow_config_change=False,
                       handle_signals=True) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns the final metrics."""
  # 1. Everything that can be wrong with the request, before compiling or writing.
  distributed.initialize()  # Before any other JAX call, when one of several processes.
  validate(config)
  workdir_lib.check(config, workdir, overwrite, allow_config_change)
  mesh = distributed.make_mesh()
  dataset = data.load(config.dataset)
  # One writer per workdir: process 0 locks it (the other processes only read).
  lock = workdir_lib.prepare(config, workdir, overwrite) if jax.process_index() == 0 else None
  try:
    transform = workdir_lib.transform(config, workdir, dataset, save=lock is not None)
    pipe = pipeline.Pipeline(dataset, mesh, config.batch_size, config.eval_batch_size,
                             config.seed, config.dataset.crop_padding, config.dataset.flip,
                             config.dataset.cutout, transform=transform)
    return _train(config, workdir, dataset, pipe, mesh, handle_signals)
  finally:
    if lock is not None:
      os.close(lock)


def _train(config, workdir, dataset, pipe, mesh, handle_signals) -> dict:
  # 2. Model, optimizer, schedule.
  spe = pipe.steps_per_epoch
  total_steps = (config.num_train_steps if config.num_train_steps > 0
                 else max(1, int(round(config.num_epochs * spe))))
  eval_every = max(1, int(round(config.eval_every_epochs * spe)))
  schedule = optim.make_schedule(config, spe, total_steps)
  # A prefix of the run: the schedule stays that of all `total_steps`.
  end = min(total_steps, config.stop_after_steps) if config.stop_after_steps > 0 else total_steps
  model = model_for(config)
  tx = optim.make_optimizer(config, schedule)
  init = jax.jit(functools.partial(create_train_state, model, tx, dataset.image_shape),
                 static_argnums=0, out_shardings=distributed.replicated(mesh))
  state = init(config.seed)
  train_fn, eval_fn = compile_steps(config, mesh, dataset.num_classes)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))

  # 3. Resume.
  validating = dataset.has_validation
  ckpt = checkpoint.Checkpointer(workdir, keep=config.keep_checkpoints, keep_best=validating)
  restored, restored_step = ckpt.restore(state)
  start = int(restored.step) if restored is not None else 0
  final = workdir_lib.read_final(workdir)
  if start >= end and final is not None:
    ckpt.close()
    print(f"Already finished in {workdir}: step {final['step']}, "
          f"{_summary_line(final)}", flush=True)
    return final
  if restored is not None:
    state = restored
    print(f'Resuming from step {restored_step} in {workdir}', flush=True)
  writer = metrics.MetricWriter(workdir, resume_step=start, total_steps=end)

  # 4. Train: log and check the loss every `log_every_steps`; evaluate on the
  # validation split and save every `eval_every` steps; stop cleanly on a signal.
  log = StepLog(writer, schedule, config.batch_size, spe, ckpt.directory, restored_step)
  last_eval = None
  with StopSignals(handle_signals, config.log_every_steps, end) as signals:
    try:
      for step in range(start, end):
        images, labels = pipe.train_batch(step // spe, step % spe)
        state, m = train_fn(state, images, labels)
        log.add(step, m)
        done = step + 1
        if done % config.log_every_steps == 0:
          log.flush()
        if done % eval_every == 0 or done == end:
          log.flush()
          scores = None
          if validating:
            last_eval = evaluate_split(eval_fn, state, pipe, 'validation')
            scores = {k: last_eval[k] for k in ('val_loss', 'val_accuracy')}
            writer.write('eval', done, epoch=done / spe, **scores,
                         val_predicted=predicted_counts(last_eval))
          ckpt.save(done, state, scores)
          log.saved(done)
        if signals.requested(done):
          log.flush()
          if log.last_saved != done:
            ckpt.save(done, state)
          ckpt.wait()
          raise Interrupted(done, signals.signum)
      log.flush()
      ckpt.wait()

      # 5. The final summary: the test split, once.
      if validating and last_eval is None:  # Resumed at the last step: nothing evaluated yet.
        last_eval = evaluate_split(eval_fn, state, pipe, 'validation')
      test = evaluate_split(eval_fn, state, pipe, 'test')
      final = _final_summary(config, dataset, pipe, state, writer, test, last_eval,
                             log.compile_sec, num_params)
      writer.write('final', final['step'], **{k: v for k, v in final.items() if k != 'step'})
    finally:
      writer.close()
      ckpt.close()
  if jax.process_index() == 0:
    workdir_lib.write_final(workdir, final)
  print(f"Done: step {final['step']}, {_summary_line(final)}", flush=True)
  return final


class StepLog:
  """The train records, and the NaN guard that reads them.

  Step metrics stay on the device until `flush` (every `log_every_steps`, and
  before every evaluation), so that the host does not wait on each step. Wall
  time counts training steps only: the first step of a process (compilation)
  is timed apart, and the clock restarts after every evaluation and save.
  """

  def __init__(self, writer, schedule, batch_size, steps_per_epoch, checkpoint_dir, last_saved):
    self._writer, self._schedule = writer, schedule
    self._batch_size, self._spe, self._checkpoint_dir = batch_size, steps_per_epoch, checkpoint_dir
    self.last_saved = last_saved  # The step of the latest checkpoint, or None.
    self.compile_sec = None
    self._pending = []            # (step, metrics on device) since the last flush.
    self._t0, self._t, self._steps = time.time(), None, 0

  def add(self, step, step_metrics):
    self._pending.append((step, step_metrics))
    if self._t is None:
      jax.block_until_ready(step_metrics)
      self.compile_sec = time.time() - self._t0
      self._t = time.time()
    else:
      self._steps += 1

  def saved(self, step):
    self.last_saved = step
    self._t, self._steps = time.time(), 0  # Evaluation and saving are not training time.

  def flush(self):
    """Fetches the pending metrics; stops on a non-finite loss; writes their means."""
    if not self._pending:
      return
    fetched = jax.device_get([m for _, m in self._pending])
    for (s, _), m in zip(self._pending, fetched):
      if not np.isfinite(m['loss']):
        kept = (f'The last good checkpoint (step {self.last_saved}) is kept in '
                f'{self._checkpoint_dir}' if self.last_saved is not None
                else 'No checkpoint had been saved yet')
        raise NonFiniteLoss(
            f'Loss is {m["loss"]} at step {s + 1}; stopping. {kept}; try a lower '
            f'learning rate or optimizer.grad_clip_norm')
    elapsed, steps = time.time() - self._t, self._steps
    step = self._pending[-1][0] + 1
    self._writer.write(
        'train', step, epoch=step / self._spe,
        loss=float(np.mean([m['loss'] for m in fetched])),
        accuracy=float(np.mean([m['accuracy'] for m in fetched])),
        learning_rate=float(self._schedule(step - 1)),
        images_per_sec=steps * self._batch_size / max(elapsed, 1e-9) if steps else None,
        step_time=elapsed / steps if steps else None)
    self._pending.clear()
    self._t, self._steps = time.time(), 0


class StopSignals:
  """While active, SIGTERM and SIGINT ask the loop to stop after its step, and save.

  One process decides alone at every step. Several agree through a collective
  every `log_every_steps` (and at the end), so that a signal to any of them
  stops all at the same step with one checkpoint: a process that stopped on
  its own would leave the others waiting in a collective forever.
  """

  def __init__(self, install: bool, log_every_steps: int, end: int):
    self._install, self._every, self._end = install, log_every_steps, end
    self._received, self._old = [], {}

  def __enter__(self):
    if self._install:
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._old[sig] = signal.signal(sig, lambda s, _: self._received.append(s))
    return self

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)

  @property
  def signum(self) -> int:
    """The first signal received (another process's count as SIGTERM)."""
    return self._received[0] if self._received else signal.SIGTERM

  def requested(self, done: int) -> bool:
    """Whether to stop after step `done`; every process answers alike."""
    if jax.process_count() == 1:
      return bool(self._received)
    if done % self._every and done != self._end:
      return False
    flags = multihost_utils.process_allgather(np.int32(len(self._received) > 0))
    return bool(np.any(flags))


def _final_summary(config, dataset, pipe, state, writer, test, last_eval, compile_sec,
                   num_params) -> dict:
  """What final_metrics.json holds: read from the run's records and the last evaluations."""
  validating = last_eval is not None
  spe = pipe.steps_per_epoch
  evals = writer.read('eval')
  best = checkpoint.best_record(evals)
  train_records = writer.read('train')
  timed = [(r, r['step'] - prev['step']) for prev, r in zip(train_records, train_records[1:])
           if r.get('step_time') is not None]
  ips = [r['images_per_sec'] for r, _ in timed]
  final = {
      'step': int(state.step), 'epochs': int(state.step) / spe,
      'test_accuracy': test['test_accuracy'], 'test_loss': test['test_loss'],
      'test_predicted': predicted_counts(test), 'class_names': list(dataset.class_names),
      'val_accuracy': last_eval['val_accuracy'] if validating else None,
      'val_loss': last_eval['val_loss'] if validating else None,
      'best_step': best['step'] if best else None,
      'best_val_accuracy': best['val_accuracy'] if best else None,
      'validation_examples': pipe.num_examples.get('validation', 0),
      'train_loss': train_records[-1]['loss'] if train_records else None,
      'train_accuracy': train_records[-1]['accuracy'] if train_records else None,
      'images_per_sec': float(np.median(ips)) if ips else None,
      'train_time_sec': sum(r['step_time'] * n for r, n in timed),
      'compile_sec': compile_sec,
      'num_params': int(num_params), 'model': config.model.name,
      'dataset': config.dataset.name, 'devices': jax.device_count(),
      'device_kind': jax.devices()[0].device_kind, 'platform': jax.default_backend(),
  }
  return final


def _summary_line(final) -> str:
  val = (f"validation accuracy {final['val_accuracy']:.4f} (best {final['best_val_accuracy']:.4f} "
         f"at step {final['best_step']}), " if final.get('val_accuracy') is not None
         else 'no validation split, ')
  return f"{val}test accuracy {final['test_accuracy']:.4f}, test loss {final['test_loss']:.4f}"
