"""The CLIs restart themselves once with glibc malloc settings, unless told not to."""
import os
import subprocess
import sys

import pytest

import runs
from nin.runtime import malloc

# What a CLI does first, then what the restarted process sees.
_CHILD = ('import os; print(os.getpid(), flush=True); from nin.runtime import malloc; '
          'malloc.reexec_with_tunables(); print(os.getpid(), os.environ.get("GLIBC_TUNABLES"))')


def _child(**env):
  e = {k: v for k, v in runs.env().items() if k != 'GLIBC_TUNABLES'}
  e.update(env)
  p = subprocess.run([sys.executable, '-c', _CHILD], cwd=runs.ROOT, env=e,
                     capture_output=True, text=True, timeout=60, check=True)
  return p.stdout.split('\n')


@pytest.mark.skipif(not (sys.platform.startswith('linux') and os.confstr('CS_GNU_LIBC_VERSION')),
                    reason='glibc tunables exist only on Linux with glibc')
def test_reexec_sets_tunables_once_in_the_same_process():
  lines = _child()
  pid = lines[0]
  # Printed twice before the restart (once per run of the code), then once after it.
  assert lines[:3] == [pid, pid, f'{pid} {malloc.TUNABLES}'], lines


def test_reexec_respects_opt_out_and_the_callers_setting():
  assert _child(NIN_GLIBC_TUNABLES='0')[1].endswith(' None')
  assert _child(GLIBC_TUNABLES='glibc.malloc.arena_max=2')[1].endswith(' glibc.malloc.arena_max=2')
  assert _child(JAX_PLATFORMS='cuda')[1].endswith(' None')  # Not on an accelerator host.


def test_importing_the_library_changes_nothing_in_the_process():
  # The project's own process settings (libraries such as TensorStore set some of theirs).
  code = ('import os; pid = os.getpid(); '
          'import nin.train.loop, nin.evaluation.evaluate, nin.experiments.report, nin.launch.sweep, nin.checks.bench; '
          'assert os.getpid() == pid; '
          'assert "XLA_FLAGS" not in os.environ and "GLIBC_TUNABLES" not in os.environ, os.environ')
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'GLIBC_TUNABLES')}
  subprocess.run([sys.executable, '-c', code], cwd=runs.ROOT, env=env, check=True)
