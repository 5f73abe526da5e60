"""Checkpoints: the best on disk is the one the records call best; readers change nothing."""
import gc
import os

import numpy as np
import pytest

import runs
from nin.train import checkpoint
from nin.evaluation import evaluate

pytestmark = pytest.mark.gpu_path  # Also run under the newer version set (.ci/run).

PLAIN = ('--config', 'configs/plain.py:smoke')


def test_a_tie_in_validation_accuracy_goes_to_the_later_step_on_disk_and_in_the_records(
    tmp_path):
  evals = [{'step': s, 'val_accuracy': a} for s, a in ((8, 0.5), (16, 0.75), (24, 0.75),
                                                       (32, 0.625))]
  ckpt = checkpoint.Checkpointer(str(tmp_path), keep=1)
  for r in evals:
    ckpt.save(r['step'], {'w': np.full((2,), r['step'], np.float32)},
              {'val_accuracy': r['val_accuracy']})
  ckpt.wait()
  assert checkpoint.best_record(evals)['step'] == ckpt.best_step() == 24
  assert sorted(ckpt.steps()) == [24, 32]  # The best and the latest; the tied earlier one goes.
  state, step = ckpt.restore({'w': np.zeros((2,), np.float32)}, step=ckpt.best_step())
  assert step == 24 and state['w'].tolist() == [24.0, 24.0]
  ckpt.close()
  assert checkpoint.best_record([]) is None


def test_a_step_whose_scores_are_damaged_is_set_aside_alone_and_never_best(tmp_path, capsys):
  workdir = str(tmp_path)
  ckpt = checkpoint.Checkpointer(workdir, keep=3)
  for step, accuracy in ((8, 0.5), (16, 0.75), (24, 0.625)):
    ckpt.save(step, {'w': np.full((2,), step, np.float32)}, {'val_accuracy': accuracy})
  ckpt.close()
  assert checkpoint.best_step(workdir) == 16
  with open(os.path.join(workdir, 'checkpoints', '16', 'metrics', 'metrics'), 'w') as f:
    f.write('{"val_accuracy": 0.7')  # Cut short.
  assert checkpoint.complete_steps(workdir) == [8, 24]
  assert checkpoint.best_step(workdir) == 24
  reopened = checkpoint.Checkpointer(workdir, keep=3)
  assert 'Checkpoint at step 16 is unreadable (damaged metadata)' in capsys.readouterr().out
  assert sorted(reopened.steps()) == [8, 24] and reopened.best_step() == 24
  reopened.close()
  assert len(os.listdir(os.path.join(workdir, 'corrupt_checkpoints'))) == 1


def _snapshot(workdir):
  return sorted(os.path.relpath(os.path.join(d, f), workdir)
                for d, _, files in os.walk(workdir) for f in files + ['.'])


def test_readers_pick_complete_steps_and_change_nothing(tmp_path):
  workdir = str(tmp_path / 'run')
  runs.cli('train.py', *PLAIN, '--workdir', workdir, '--config.num_epochs=3',
           '--config.keep_checkpoints=3', check=True)
  os.makedirs(os.path.join(workdir, 'checkpoints', '99'))  # Being written, or foreign.
  before = _snapshot(workdir)
  assert checkpoint.complete_steps(workdir) == [8, 16, 24]
  records = [r for r in runs.records(workdir) if r['kind'] == 'eval']
  assert checkpoint.best_step(workdir) == checkpoint.best_record(records)['step']
  assert evaluate.load_run(workdir, 'latest').step == 24
  assert evaluate.load_run(workdir, 'best').step == checkpoint.best_step(workdir)
  assert _snapshot(workdir) == before  # Nothing set aside, created or removed.


# A read of a step that the run deletes meanwhile fails inside TensorStore, whose threads
# then report their closed event loop as unraisable; the reader chooses again.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_eval_beside_a_run_that_is_saving_reads_only_complete_checkpoints(tmp_path):
  workdir = str(tmp_path / 'run')
  # A checkpoint every 8 steps, the previous one deleted each time: a reader races both.
  trainer = runs.start('train.py', *PLAIN, '--workdir', workdir, '--config.num_epochs=30',
                       '--config.keep_checkpoints=1')
  loaded = []
  while trainer.poll() is None:
    if checkpoint.complete_steps(workdir):
      loaded.append(evaluate.load_run(workdir, 'latest' if len(loaded) % 2 else 'best').step)
  out, err = trainer.communicate()
  assert trainer.returncode == 0, err
  assert len(loaded) >= 3 and all(s % 8 == 0 for s in loaded), loaded
  assert not os.path.exists(os.path.join(workdir, 'corrupt_checkpoints'))
  assert runs.final(workdir)['step'] == 30 * 8
  gc.collect()  # The abandoned reads' coroutines report here, not in whichever test runs next.
