r"""airbench94's own code, run on a CPU on a given copy of CIFAR-10: the reference of
docs/time_to_accuracy/reference, re-done from a checkout of its repository.

  git clone https://github.com/KellerJordan/cifar10-airbench AIRBENCH
  git -C AIRBENCH checkout f1c599c4af24aca803e3e65a6a7e52a502e09d0e
  python benchmarks/airbench94_reference.py --airbench AIRBENCH \
      --tarball /folder/cifar-10-binary.tar.gz --workdir /tmp/airbench_ref --seed 0
  python benchmarks/airbench94_reference.py --airbench AIRBENCH --check   # patch only

It reads `legacy/airbench94.py` from the checkout, applies the changes that
docs/time_to_accuracy/reference/README.md lists (each must match the code
exactly once, so a checkout at another commit fails loudly instead of running
something else), writes the patched script and the data in its own format
(`cifar10/train.pt`, `test.pt`) into `--workdir`, and runs it there with
PyTorch (CPU build; torchvision is not needed). Its printed table is the log.
The upstream code is read from the checkout, never copied into this project.
"""
import argparse
import os
import subprocess
import sys
import tarfile

COMMIT = 'f1c599c4af24aca803e3e65a6a7e52a502e09d0e'
SCRIPT = os.path.join('legacy', 'airbench94.py')

_TIMER = '''
import time as _time
class _Event:  # CUDA events' interface, timed on the host (this runs on a CPU).
    def __init__(self, enable_timing=True):
        self.t = None
    def record(self):
        self.t = _time.perf_counter()
    def elapsed_time(self, end):
        return 1e3 * (end.t - self.t)
'''

# (what, the upstream text, its replacement): the reference README's list, in its order.
CHANGES = (
    ('the network stays in float32 on the CPU',
     'net = net.half().cuda()', 'net = net.float()'),
    ('the images in float32', 'self.images = (self.images.half() / 255)',
     'self.images = (self.images.float() / 255)'),
    ('saved tensors loaded on the CPU', 'map_location=torch.device(gpu)',
     "map_location='cpu'"),
    ("torchvision's Normalize written out as the same per-channel arithmetic",
     'self.normalize = T.Normalize(CIFAR_MEAN, CIFAR_STD)',
     'self.normalize = lambda x: (x - CIFAR_MEAN.view(1, 3, 1, 1)) / CIFAR_STD.view(1, 3, 1, 1)'),
    ('torchvision not imported (not installed beside the CPU build of PyTorch)',
     'import torchvision\nimport torchvision.transforms as T\n', _TIMER),
    ('CUDA event timers as host timers around the same sections',
     'torch.cuda.Event(enable_timing=True)', '_Event(enable_timing=True)'),
    ('no device to synchronise', 'torch.cuda.synchronize()', 'pass'),
    ("cudnn.benchmark replaced by the run's seed from the environment",
     'torch.backends.cudnn.benchmark = True',
     "torch.manual_seed(int(os.environ.get('SEED', '0')))"),
    ('one run per process instead of 25', 'for run in range(25)', 'for run in range(1)'),
    ('every table line flushed', 'print(print_string)', 'print(print_string, flush=True)'),
)
# Replaced wherever they occur (several times in the upstream code); the rest exactly once.
_EVERYWHERE = ('torch.cuda.Event(enable_timing=True)', 'torch.cuda.synchronize()',
               'print(print_string)')


def patch(source: str) -> str:
  """The upstream script with CHANGES applied; a change that does not match fails."""
  for what, old, new in CHANGES:
    count = source.count(old)
    if count == 0 or (count > 1 and old not in _EVERYWHERE):
      raise SystemExit(f'Error: {SCRIPT} has {count} occurrences of {old!r} ({what}); '
                       f'check out commit {COMMIT}')
    source = source.replace(old, new)
  return source


def _cifar_from_tarball(path):
  """(train images, train labels, test images, test labels, class names) of the official
  binary tarball: each record is a label byte and 3,072 bytes of channel-major pixels."""
  import numpy as np
  parts = {}
  with tarfile.open(path) as tar:
    for member in tar.getmembers():
      name = os.path.basename(member.name)
      if name.endswith('.bin') or name == 'batches.meta.txt':
        parts[name] = tar.extractfile(member).read()
  def split(names):
    raw = np.frombuffer(b''.join(parts[n] for n in names), np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), raw[:, 0].astype(np.int64)
  xtr, ytr = split([f'data_batch_{i}.bin' for i in range(1, 6)])
  xte, yte = split(['test_batch.bin'])
  classes = [c for c in parts['batches.meta.txt'].decode().split('\n') if c.strip()]
  return xtr, ytr, xte, yte, classes


def write_data(tarball: str, folder: str) -> None:
  """train.pt and test.pt in airbench's format: uint8 NHWC images, int64 labels, classes."""
  import torch
  xtr, ytr, xte, yte, classes = _cifar_from_tarball(tarball)
  os.makedirs(folder, exist_ok=True)
  for name, x, y in (('train.pt', xtr, ytr), ('test.pt', xte, yte)):
    torch.save({'images': torch.tensor(x), 'labels': torch.tensor(y), 'classes': classes},
               os.path.join(folder, name))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--airbench', required=True, help='A checkout of KellerJordan/cifar10-airbench.')
  p.add_argument('--tarball', help='cifar-10-binary.tar.gz (the official layout).')
  p.add_argument('--workdir', default='airbench94_reference')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--check', action='store_true', help='Patch and compile only; run nothing.')
  a = p.parse_args()
  with open(os.path.join(a.airbench, SCRIPT)) as f:
    patched = patch(f.read())
  compile(patched, SCRIPT, 'exec')
  if a.check:
    print(f'{SCRIPT}: all {len(CHANGES)} changes apply and the result compiles')
    return 0
  if not a.tarball:
    p.error('--tarball is needed to run (or --check)')
  os.makedirs(a.workdir, exist_ok=True)
  script = os.path.join(a.workdir, 'airbench94_cpu.py')
  with open(script, 'w') as f:
    f.write(patched)
  if not os.path.exists(os.path.join(a.workdir, 'cifar10', 'train.pt')):
    write_data(a.tarball, os.path.join(a.workdir, 'cifar10'))
  return subprocess.call([sys.executable, 'airbench94_cpu.py'], cwd=a.workdir,
                         env=dict(os.environ, SEED=str(a.seed)))


if __name__ == '__main__':
  sys.exit(main())
