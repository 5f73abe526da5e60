"""What the training loop keeps while it runs: its train records with the NaN guard
(`StepLog`), and the requests to stop (`StopSignals`)."""
import signal
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from nin.errors import NonFiniteLoss


class StepLog:
  """The train records, and the NaN guard that reads them.

  Step metrics stay on the device until `flush` (every `log_every_steps`, and
  before every evaluation), so that the host does not wait on each step. Wall
  time counts training steps only: the first step of a process (compilation)
  is timed apart, and the clock restarts after every evaluation and save.

  `train_time` is the training time of the whole run so far (a resumed run
  adds to what its records hold): each logged interval counts its steps at
  their mean time, so the first step of a process counts as a typical step,
  not as its compilation.
  """

  def __init__(self, writer, schedule, *, batch_size, steps_per_epoch, checkpoint_dir,
               last_saved, start=0):
    self._writer, self._schedule = writer, schedule
    self._batch_size, self._spe, self._checkpoint_dir = batch_size, steps_per_epoch, checkpoint_dir
    self.last_saved = last_saved  # The step of the latest checkpoint, or None.
    self.compile_sec = None
    self._pending = []            # (step, metrics on device) since the last flush.
    self._t0, self._t, self._steps = time.time(), None, 0
    earlier = writer.read('train')
    self.train_time = (earlier[-1].get('train_time_sec') or 0.0) if earlier else 0.0
    self._last_step = start       # Where the last record (or this process) began timing.

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
    elapsed, n_steps = time.time() - self._t, self._steps
    step = self._pending[-1][0] + 1
    if n_steps:
      self.train_time += elapsed / n_steps * (step - self._last_step)
    self._last_step = step
    self._writer.write(
        'train', step, epoch=step / self._spe,
        loss=float(np.mean([m['loss'] for m in fetched])),
        accuracy=float(np.mean([m['accuracy'] for m in fetched])),
        learning_rate=float(self._schedule(step - 1)),
        images_per_sec=n_steps * self._batch_size / max(elapsed, 1e-9) if n_steps else None,
        step_time=elapsed / n_steps if n_steps else None, train_time_sec=self.train_time)
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
