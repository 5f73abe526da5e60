r"""Evaluates a workdir's checkpoint: flag parsing around `nin.evaluate.evaluate_run`.

  python eval.py --workdir runs/nin
  python eval.py --workdir runs/nin --checkpoint=best --flip_tta

Prints and writes (into the workdir) test accuracy, loss, per-class accuracy
and the confusion matrix, as JSON and PNG.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags  # noqa: E402

from nin import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'A workdir written by train.py.')
_CHECKPOINT = flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'],
                                'Which checkpoint: the latest, or the best by test accuracy.')
_TTA = flags.DEFINE_bool('flip_tta', False, 'Average predictions over the image and its mirror.')
_DATA_DIR = flags.DEFINE_string('data_dir', '', 'Override the TFDS data dir saved in the config.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  from nin import evaluate

  def run():
    r = evaluate.evaluate_run(_WORKDIR.value, _CHECKPOINT.value, _TTA.value, _DATA_DIR.value)
    print(f"{_WORKDIR.value} step {r['step']} ({r['checkpoint']}"
          f"{', flip TTA' if r['flip_tta'] else ''}): test accuracy {r['test_accuracy']:.4f}, "
          f"test loss {r['test_loss']:.4f} on {r['count']} images")
    for name, acc in zip(r['class_names'], r['per_class_accuracy']):
      print(f'  {name:>12}: {acc:.4f}')
  return cli.run(run)


if __name__ == '__main__':
  sys.exit(cli.main(main))
