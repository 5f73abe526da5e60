"""Test setup: CPU only, quiet TensorFlow, one compilation cache, and shared fixtures."""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Dozens of tests start train.py on the same small configs; each would compile the same
# steps again (about 15 of its 19 seconds). JAX's persistent compilation cache lets every
# process after the first load them. The first conftest to run (pytest's, before xdist
# starts its workers) makes the folder; the workers and every subprocess inherit it.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='nin-test-jax-cache-')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

from nin.runtime import xla_flags  # noqa: E402

xla_flags.configure()  # What the CLIs apply, for the tests that run the library in-process.


import pytest  # noqa: E402

import cifar_fixture  # noqa: E402


@pytest.fixture(scope='session')
def cifar_dirs(tmp_path_factory):
  """A small CIFAR-10 tarball, prepared once through the real TFDS builder, offline.

  Returns (data_dir, manual_dir, (train arrays), (test arrays)).
  """
  root = tmp_path_factory.mktemp('cifar')
  train, test = cifar_fixture.make_arrays(n_per_batch=40, n_test=50)
  path = cifar_fixture.write_tarball(str(root / 'manual'), train, test)
  with pytest.MonkeyPatch.context() as mp:
    cifar_fixture.register_fake_checksum(mp, path)
    from configs import common
    from nin import data
    cfg = common.get_base_config().dataset
    cfg.data_dir, cfg.manual_dir = str(root / 'tfds'), str(root / 'manual')
    cfg.validation_examples = 0
    data.load(cfg)
  return str(root / 'tfds'), str(root / 'manual'), train, test
