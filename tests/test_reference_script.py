"""benchmarks/airbench94_reference.py: the reference run's changes, and its data, without
PyTorch or the upstream code (neither is here)."""
import os
import sys

import numpy as np
import pytest

import cifar_fixture
import runs

sys.path.insert(0, os.path.join(runs.ROOT, 'benchmarks'))
import airbench94_reference as reference  # noqa: E402


def _upstream_like():
  """Text holding each line the changes expect, the way the upstream script holds it."""
  lines = [old for _, old, _ in reference.CHANGES]
  lines.append('torch.cuda.synchronize()')  # Several times upstream.
  return '\n'.join(lines) + '\n'


def test_every_change_applies_and_a_changed_upstream_fails_loudly():
  patched = reference.patch(_upstream_like())
  for what, old, new in reference.CHANGES:
    assert old not in patched, what
  assert patched.count('pass') == 2 and 'import torchvision' not in patched
  for _, old, _ in reference.CHANGES:
    with pytest.raises(SystemExit, match='occurrences of .*check out commit'):
      reference.patch(_upstream_like().replace(old, ''))
  with pytest.raises(SystemExit, match='2 occurrences'):  # A line meant to be there once.
    reference.patch(_upstream_like() + 'net = net.half().cuda()\n')


def test_the_data_is_read_from_the_official_tarball_exactly(tmp_path):
  train, test = cifar_fixture.make_arrays(n_per_batch=4, n_test=5)
  path = cifar_fixture.write_tarball(str(tmp_path), train, test)
  xtr, ytr, xte, yte, classes = reference._cifar_from_tarball(path)
  np.testing.assert_array_equal(xtr, train[0])
  np.testing.assert_array_equal(ytr, train[1])
  np.testing.assert_array_equal(xte, test[0])
  np.testing.assert_array_equal(yte, test[1])
  assert classes == cifar_fixture.CLASS_NAMES and xtr.dtype == np.uint8
