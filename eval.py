r"""Evaluates a workdir's checkpoint: flag parsing around `nin.evaluation.evaluate.evaluate_run`.

  python eval.py --workdir runs/nin
  python eval.py --workdir runs/nin --checkpoint=best --tta=1      # and the mirror images
  python eval.py --workdir runs/nin --split=validation
  python eval.py --workdir runs/nin --class_maps=8   # NiN: class maps, and on a mosaic

Prints and writes (into the workdir) accuracy, loss, per-class accuracy,
per-class prediction counts and the confusion matrix, as JSON and PNG. The
best checkpoint is the best by validation accuracy. `--class_maps=N` adds
NiN's class confidence maps (nin/evaluation/class_maps.py) as PNGs.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags  # noqa: E402

from nin import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'A workdir written by train.py.')
_CHECKPOINT = flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'],
                                'Which checkpoint: the latest, or the best by validation accuracy.')
_SPLIT = flags.DEFINE_enum('split', 'test', ['test', 'validation'], 'Which split to evaluate.')
_TTA = flags.DEFINE_enum(
    'tta', '0', ['0', '1', '2'], 'Test-time augmentation: average the logits over the image '
    'and its mirror (1), and over both for the image shifted by a pixel either way (2).')
_DATA_DIR = flags.DEFINE_string('data_dir', '', 'Override the TFDS data dir saved in the config.')
_CLASS_MAPS = flags.DEFINE_integer(
    'class_maps', 0, lower_bound=0,
    help='NiN only: also write the class maps of the first N test images, and of a 3x3 mosaic '
         'of test images (96x96 for CIFAR), as PNGs in the workdir.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  from nin.evaluation import evaluate

  def run():
    tta = int(_TTA.value)
    r = evaluate.evaluate_run(_WORKDIR.value, _CHECKPOINT.value, tta, _DATA_DIR.value,
                              split=_SPLIT.value, class_maps=_CLASS_MAPS.value)
    p = 'val' if r['split'] == 'validation' else 'test'
    plain = (f" (without test-time augmentation {r[p + '_accuracy_plain']:.4f})" if tta else '')
    print(f"{_WORKDIR.value} step {r['step']} ({r['checkpoint']}"
          f"{f', TTA level {tta}' if tta else ''}): {r['split']} accuracy "
          f"{r[p + '_accuracy']:.4f}{plain}, {r['split']} loss {r[p + '_loss']:.4f} "
          f"on {r['count']} images")
    if tta and not r['trained_with_flips']:
      print('  warning: this run was trained without flips (dataset.flip=False): mirrored '
            'test images are unlike its training images', file=sys.stderr)
    print(f"  {'class':>12}  accuracy  predicted")
    for name, acc, n in zip(r['class_names'], r['per_class_accuracy'], r['predicted_counts']):
      print(f'  {name:>12}: {acc:.4f}  {n:9d}')
    for path in r.get('class_map_pngs', []):
      print(f'  wrote {path}')
  return cli.run(run)


if __name__ == '__main__':
  sys.exit(cli.main(main, joins_peers=True))
