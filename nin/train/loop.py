"""The training loop: it drives the steps of nin/train/steps.py.

    from nin import train
    from configs import nin
    final = train.train_and_evaluate(nin.get_config('digits'), 'runs/nin_digits')

The loop, top to bottom, each step a function: check the config, the workdir
and the data (`train_and_evaluate`); build model, optimizer and the compiled
steps (`build`); resume from the latest checkpoint (`_train`); train,
evaluating on the validation split and checkpointing every `eval_every_epochs`
(`_loop`, `_evaluate_and_save`; the best checkpoint is the best by validation
accuracy); evaluate the test split once, at the end (`_finish`). Batches
and dropout keys are functions of the step, so a resumed run repeats an
uninterrupted one exactly. SIGTERM/SIGINT save a checkpoint and stop cleanly;
a non-finite loss stops the run before anything bad is saved.
"""
import dataclasses
from typing import Any

import jax
import numpy as np

from nin import data, registry
from nin import workdir as workdir_lib
from nin.data import pipeline, preprocess
from nin.errors import Interrupted, WorkdirConflict
from nin.runtime import determinism, distributed
from nin.train import (checkpoint, metrics, optim, passes, progress, provenance, run_config,
                       steps, summary)
from nin.train.validate import validate

# Validation accuracies whose first crossing final_metrics.json records.
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.93, 0.94)


# ----------------------------------------------------------------------------- the loop

def train_and_evaluate(config, workdir: str, *, overwrite=False, allow_config_change=False,
                       handle_signals=True) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns the final metrics."""
  # 1. Everything that can be wrong with the request, before compiling or writing.
  if config.get('deterministic', False) is not False:  # Before JAX starts its backend.
    print(f'Deterministic: {determinism.require(config.deterministic)}', flush=True)
  distributed.initialize()  # Before any other JAX call, when one of several processes.
  validate(config)
  run_config.check(config, workdir, overwrite, allow_config_change)
  mesh = distributed.make_mesh()
  dataset = data.load(config.dataset)
  # One writer per workdir: process 0 claims it (the other processes only read). Nothing is
  # written there until every check below has passed: a refused start leaves it as found.
  claim = workdir_lib.claim(workdir, overwrite) if jax.process_index() == 0 else None
  try:
    saved = None if overwrite else workdir  # What an --overwrite deletes is not read.
    transform = preprocess.for_run(config, saved, dataset)
    pipe = pipeline.Pipeline.from_config(dataset, mesh, config, transform)
    setup, state = build(config, dataset, pipe, mesh)
    final = None if overwrite else _check_resumable(workdir, setup, state)
    if final is not None:  # Finished: nothing to redo, nothing written.
      print(f"Already finished in {workdir}: step {final['step']}, "
            f"{_summary_line(final)}", flush=True)
      return final
    if claim is not None:
      workdir_lib.commit(claim, config, overwrite)
      preprocess.store(transform, workdir)
    # Versions, commit and command of this start (process 0 records them in the workdir).
    started = provenance.append(workdir) if claim is not None else provenance.collect()
    return _train(config, workdir, dataset, pipe, setup, state, handle_signals, started)
  finally:
    if claim is not None:
      workdir_lib.release(claim)


def _check_resumable(workdir, setup, state):
  """Refuses, before anything is written, a workdir this run cannot continue: a damaged
  metrics file, checkpoints of another network, a finished run that lost its checkpoints
  and is asked to train further. Returns the final metrics of a run that has finished
  (its checkpoints kept or deleted since: there is nothing to redo), else None."""
  metrics.read_metrics(workdir)
  checkpoint.refuse_another_tree(workdir, state)
  final = workdir_lib.read_final(workdir)
  if final is None:
    return None
  kept = checkpoint.complete_steps(workdir)
  if final['step'] >= setup.end and (not kept or kept[-1] >= setup.end):
    return final  # Finished: run again, it writes nothing (not even a provenance line).
  if kept:
    return None
  raise WorkdirConflict(
      f"{workdir} holds a run that finished at step {final['step']} and has no checkpoint "
      f"to continue from to step {setup.end}; pass --overwrite to train it afresh, or "
      f"choose another --workdir")


@dataclasses.dataclass
class Setup:
  """What the loop runs: the schedule's lengths and the compiled steps."""
  steps_per_epoch: int
  validating: bool         # Whether a validation split is held out (evaluated, best kept).
  end: int                 # The last step of this run (a prefix of the schedule stops early).
  eval_every: int
  schedule: Any
  train_fn: Any
  eval_fn: Any
  final_eval_fn: Any       # With test-time augmentation: the final evaluations only.
  stats_fn: Any            # BatchNorm's statistics recomputed, or None without BatchNorm.
  num_params: int
  flops_per_step: float    # The model's (forward and backward) and the optimizer's.
  model_flops_per_step: float


@dataclasses.dataclass
class Run:
  """What the loop's steps share besides the state: one run's parts, by name."""
  config: Any
  dataset: data.Dataset
  pipe: pipeline.Pipeline
  setup: Setup
  ckpt: checkpoint.Checkpointer
  writer: metrics.MetricWriter
  log: progress.StepLog


def _train(config, workdir, dataset, pipe, setup, state, handle_signals, started) -> dict:
  # 3. Resume from the latest readable checkpoint (or say the run had finished).
  ckpt = checkpoint.Checkpointer(workdir, keep=config.keep_checkpoints,
                                 keep_best=setup.validating)
  restored, restored_step = ckpt.restore(state)
  start = int(restored.step) if restored is not None else 0
  final = workdir_lib.read_final(workdir)
  if start >= setup.end and final is not None:
    ckpt.close()
    print(f"Already finished in {workdir}: step {final['step']}, "
          f"{_summary_line(final)}", flush=True)
    return final
  if restored is not None:
    state = restored
    print(f'Resuming from step {restored_step} in {workdir}', flush=True)
  writer = metrics.MetricWriter(workdir, resume_step=start, total_steps=setup.end)
  log = progress.StepLog(writer, setup.schedule, batch_size=config.batch_size,
                         steps_per_epoch=setup.steps_per_epoch, checkpoint_dir=ckpt.directory,
                         last_saved=restored_step, start=start)
  run = Run(config, dataset, pipe, setup, ckpt, writer, log)
  with progress.StopSignals(handle_signals, config.log_every_steps, setup.end) as signals:
    try:
      state, last_eval = _loop(run, state, start, signals)
      final = _finish(run, state, last_eval)
      final['provenance'] = started  # The start that finished the run (final_metrics.json).
    finally:
      writer.close()
      ckpt.close()
  if jax.process_index() == 0:
    workdir_lib.write_final(workdir, final)
  print(f"Done: step {final['step']}, {_summary_line(final)}", flush=True)
  return final


def build(config, dataset, pipe, mesh):
  """2. (Setup, a fresh state): model, optimizer, schedule and the compiled steps (a
  notebook can build them alone, to step through a run by hand)."""
  spe = pipe.steps_per_epoch
  total_steps = (config.num_train_steps if config.num_train_steps > 0
                 else max(1, int(round(config.num_epochs * spe))))
  schedule = optim.make_schedule(config, spe, total_steps)
  tx = optim.make_optimizer(config, schedule, spe)
  # Parameters fitted to the data (airbench's whitening) read the first training images.
  fit_images = (pipe.preprocessed(dataset.train_images[:registry.DATA_FIT_EXAMPLES])
                if registry.data_fit(config.model) else None)
  model = steps.model_for(config)
  state = steps.initial_state_fn(config, model, tx, dataset.image_shape, mesh)(
      config.seed, fit_images)
  del fit_images
  train_fn, eval_fn = steps.compile_steps(config, mesh, dataset.num_classes, 0, total_steps)
  # Test-time augmentation costs up to 6 more forward passes: only the final evaluations.
  final_eval_fn = steps.compile_steps(config, mesh, dataset.num_classes, config.tta)[1]
  has_bn = state.batch_stats is not None
  stats_fn = steps.compile_batch_stats(config, mesh) if has_bn else None
  macs = summary.macs_per_image(model, dataset.image_shape)
  model_flops = summary.FLOPS_PER_MAC * macs * config.batch_size
  return Setup(
      steps_per_epoch=spe, validating=dataset.has_validation,
      # A prefix of the run: the schedule stays that of all `total_steps`.
      end=min(total_steps, config.stop_after_steps) if config.stop_after_steps > 0
      else total_steps,
      eval_every=max(1, int(round(config.eval_every_epochs * spe))),
      schedule=schedule, train_fn=train_fn, eval_fn=eval_fn, final_eval_fn=final_eval_fn,
      stats_fn=stats_fn, num_params=sum(x.size for x in jax.tree.leaves(state.params)),
      flops_per_step=model_flops + optim.newton_schulz_flops(config, state.params),
      model_flops_per_step=model_flops), state


def _loop(run: Run, state, start: int, signals: progress.StopSignals):
  """4. Train: log and check the loss every `log_every_steps`; evaluate on the validation
  split and save every `eval_every` steps; stop cleanly on a signal. Returns (state, the
  last validation result or None)."""
  setup, log = run.setup, run.log
  spe, end, last_eval = setup.steps_per_epoch, setup.end, None
  for step in range(start, end):
    images, labels = run.pipe.train_batch(step // spe, step % spe)
    state, m = setup.train_fn(state, images, labels)
    log.add(step, m)
    done = step + 1
    if done % run.config.log_every_steps == 0:
      log.flush()
    if done % setup.eval_every == 0 or done == end:
      state, last_eval = _evaluate_and_save(run, state, done, last_eval)
    if signals.requested(done):
      log.flush()
      if log.last_saved != done:
        run.ckpt.save(done, state)
      run.ckpt.wait()
      raise Interrupted(done, signals.signum)
  log.flush()
  run.ckpt.wait()
  return state, last_eval


def _evaluate_and_save(run: Run, state, done: int, last_eval):
  """After step `done`: BatchNorm's statistics recomputed, the validation split evaluated
  and recorded, and a checkpoint saved with its score. Returns (state, the evaluation)."""
  run.log.flush()
  setup, spe = run.setup, run.setup.steps_per_epoch
  if setup.stats_fn is not None:  # The training batches of this epoch, as they were seen.
    state = passes.recompute_batch_stats(setup.stats_fn, state, [
        run.pipe.train_batch((done - 1) // spe, i)[0]
        for i in range(min(run.config.bn_stats_batches, spe))])
  scores = None
  if setup.validating:
    last_eval = passes.evaluate_split(setup.eval_fn, state, run.pipe, 'validation')
    scores = {k: last_eval[k] for k in ('val_loss', 'val_accuracy')}
    run.writer.write('eval', done, epoch=done / spe, **scores,
                     val_predicted=passes.predicted_counts(last_eval),
                     train_flops=float(setup.flops_per_step * done),
                     train_time_sec=run.log.train_time)
  run.ckpt.save(done, state, scores)
  run.log.saved(done)
  return state, last_eval


def _finish(run: Run, state, last_eval) -> dict:
  """5. The final summary: the test split, evaluated once (and validation again with TTA)."""
  setup = run.setup
  if setup.validating and (last_eval is None or run.config.tta):  # With TTA, or not yet.
    last_eval = passes.evaluate_split(setup.final_eval_fn, state, run.pipe, 'validation')
  test = passes.evaluate_split(setup.final_eval_fn, state, run.pipe, 'test')
  final = _final_summary(run, state, test, last_eval)
  run.writer.write('final', final['step'], **{k: v for k, v in final.items() if k != 'step'})
  return final


def time_to_accuracy(evals) -> dict:
  """For each of THRESHOLDS, the first evaluation whose validation accuracy reached it:
  {'0.9': {'step', 'epoch', 'train_flops', 'train_time_sec'}}; thresholds never reached
  are absent."""
  reached = {}
  for t in THRESHOLDS:
    first = next((r for r in evals if r['val_accuracy'] >= t), None)
    if first is not None:
      reached[str(t)] = {k: first.get(k) for k in ('step', 'epoch', 'train_flops',
                                                   'train_time_sec')}
  return reached


def _final_summary(run: Run, state, test, last_eval) -> dict:
  """What final_metrics.json holds: read from the run's records and the last evaluations."""
  config, pipe, writer, log = run.config, run.pipe, run.writer, run.log
  num_params, flops_per_step = run.setup.num_params, run.setup.flops_per_step
  model_flops = run.setup.model_flops_per_step
  validating = last_eval is not None
  spe = pipe.steps_per_epoch
  evals = writer.read('eval')
  best = checkpoint.best_record(evals)
  train_records = writer.read('train')
  ips = [r['images_per_sec'] for r in train_records if r.get('images_per_sec') is not None]
  tta = {}
  if config.tta:
    tta = {'tta': config.tta, 'test_accuracy_tta': test['test_accuracy_tta'],
           'test_loss_tta': test['test_loss_tta'],
           'val_accuracy_tta': last_eval['val_accuracy_tta'] if validating else None}
  final = {
      'step': int(state.step), 'epochs': int(state.step) / spe,
      'test_accuracy': test['test_accuracy'], 'test_loss': test['test_loss'],
      'test_predicted': passes.predicted_counts(test),
      'class_names': list(run.dataset.class_names),
      'val_accuracy': last_eval['val_accuracy'] if validating else None,
      'val_loss': last_eval['val_loss'] if validating else None,
      'best_step': best['step'] if best else None,
      'best_val_accuracy': best['val_accuracy'] if best else None,
      'validation_examples': pipe.num_examples.get('validation', 0),
      'train_loss': train_records[-1]['loss'] if train_records else None,
      'train_accuracy': train_records[-1]['accuracy'] if train_records else None,
      **tta,
      'images_per_sec': float(np.median(ips)) if ips else None,
      'train_time_sec': log.train_time,
      'train_flops': float(flops_per_step * int(state.step)),
      'flops_per_image': model_flops / config.batch_size,
      'optimizer_flops_per_step': flops_per_step - model_flops,  # Muon's Newton-Schulz.
      'time_to_val_accuracy': time_to_accuracy(evals) if validating else {},
      'compile_sec': log.compile_sec,
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
