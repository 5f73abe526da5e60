r"""Trains a model: flag parsing around `nin.train.loop.train_and_evaluate`.

  python train.py --config configs/nin.py --workdir runs/nin
  python train.py --config configs/nin.py:digits --workdir runs/nin_digits \
      --config.optimizer.learning_rate=0.05 --config.num_epochs=5

Running the same command again resumes from the latest checkpoint in the
workdir. Exit codes: 0 done, 1 non-finite loss, 2 bad config, data or workdir,
128+N stopped by signal N (a checkpoint was saved).
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from nin import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file and variant, e.g. configs/nin.py:relu_only.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and config go.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Delete what the workdir holds and start afresh.')
_ALLOW_CHANGE = flags.DEFINE_bool(
    'allow_config_change', False, 'Resume a workdir whose saved config differs from this one.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  from nin import train
  return cli.run(lambda: train.train_and_evaluate(
      _CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value,
      allow_config_change=_ALLOW_CHANGE.value))


if __name__ == '__main__':
  sys.exit(cli.main(main, joins_peers=True))
