"""glibc malloc settings for training on the CPU (documented, overridable).

XLA:CPU allocates a step's temporaries afresh on every call. glibc serves
blocks this large with new `mmap`s and unmaps them when they are freed, so
the kernel faults every 4 KiB page in again on the next step, zeroing it:
about 160,000 page faults per NiN training step at batch 128 and a million
per GoogLeNet step on the machine the README figures come from, a fifth of
NiN's step time and a quarter of GoogLeNet's. Backing malloc's memory with
transparent huge pages (`hugetlb=1`), keeping blocks under 32 MiB on the
heap and never trimming it lets the steps reuse memory that is already
mapped (docs/bench/README.md).

glibc reads `GLIBC_TUNABLES` once, when the process starts, so the
command-line tools re-execute themselves once with it set (same PID,
arguments and environment otherwise). This happens only on Linux with
glibc, only when JAX will run on the CPU alone (as for `nin.runtime.xla_flags`),
never when `GLIBC_TUNABLES` is already set (yours wins), and not at all with
NIN_GLIBC_TUNABLES=0. Notebooks and other long-lived processes get it by
starting them with the variable set, e.g. `GLIBC_TUNABLES=... jupyter lab`.
"""
import os
import platform
import sys

from nin.runtime import xla_flags

TUNABLES = ('glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:'
            'glibc.malloc.trim_threshold=68719476736')


def wanted() -> bool:
  return (sys.platform.startswith('linux') and platform.libc_ver()[0] == 'glibc'
          and os.environ.get('NIN_GLIBC_TUNABLES', '1') != '0'
          and 'GLIBC_TUNABLES' not in os.environ and xla_flags.cpu_only())


def reexec_with_tunables() -> None:
  """Restarts this process with TUNABLES set, if `wanted()`; returns otherwise."""
  if not wanted():
    return
  os.environ['GLIBC_TUNABLES'] = TUNABLES
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
