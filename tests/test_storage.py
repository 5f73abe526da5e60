"""A disk that refuses writes (full, read-only): one line, and no checkpoint lost.

The workdir sits on a small tmpfs of its own, which needs the permission to
mount (root, as on this project's machines and CI).
"""
import os
import subprocess

import pytest

import runs

PLAIN = ('--config', 'configs/plain.py:smoke', '--config.num_epochs=2',
         '--config.keep_checkpoints=1')


def _mount(path, options):
  p = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)],
                     capture_output=True, text=True)
  return p.returncode == 0


@pytest.fixture
def disk(tmp_path):
  """A 4 MiB tmpfs of its own."""
  path = tmp_path / 'disk'
  path.mkdir()
  if not _mount(path, 'size=4m'):
    pytest.skip('mounting a tmpfs needs root')
  yield path
  subprocess.run(['umount', str(path)], check=True)


def _one_line(p, code, *fragments):
  assert p.returncode == code, (p.stdout, p.stderr)
  assert all(f in p.stderr for f in fragments) and p.stderr.strip().count('\n') == 0, p.stderr


def _size(path):
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def test_a_full_then_read_only_disk_is_one_line_and_the_run_resumes_once_there_is_room(disk):
  workdir = str(disk / 'run')
  checkpoints = os.path.join(workdir, 'checkpoints')
  runs.cli('train.py', *PLAIN, '--workdir', workdir, '--config.stop_after_steps=8', check=True)
  assert os.listdir(checkpoints) == ['8']
  # Fill the disk up to half a checkpoint: room for the metrics, not for step 16.
  stat = os.statvfs(disk)
  filler = disk / 'filler'
  filler.write_bytes(b'\0' * (stat.f_bavail * stat.f_frsize - _size(checkpoints) // 2))

  full = runs.cli('train.py', *PLAIN, '--workdir', workdir, '--allow_config_change')
  _one_line(full, 1, 'Cannot write the checkpoint of step 16 in', 'no space left on device. '
            'The complete checkpoints are kept (the latest: step 8)')
  assert os.listdir(checkpoints) == ['8']  # The partial step 16 is gone, its space free.

  assert _mount(disk, 'remount,ro')
  read_only = runs.cli('train.py', *PLAIN, '--workdir', workdir, '--allow_config_change')
  _one_line(read_only, 2, f'Cannot write to {workdir} (the workdir): read-only file system')
  assert os.listdir(checkpoints) == ['8']

  assert _mount(disk, 'remount,rw')
  filler.unlink()
  resumed = runs.cli('train.py', *PLAIN, '--workdir', workdir, '--allow_config_change',
                     check=True)
  assert 'Resuming from step 8' in resumed.stdout
  assert runs.final(workdir)['step'] == 16
