"""The best checkpoint kept on disk is the one the run's records call best."""
import numpy as np

from nin import checkpoint


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
