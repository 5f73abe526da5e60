"""Helpers to run train.py / eval.py as a user would, in a subprocess."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = ('images_per_sec', 'step_time', 'compile_sec', 'train_time_sec', 'time_to_val_accuracy')


def env(devices=1):
  e = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3')
  e['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  return e


def cli(script, *args, devices=1, check=False, timeout=300):
  """Runs `python script args...` from the repository root; returns CompletedProcess."""
  p = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env(devices),
                     capture_output=True, text=True, timeout=timeout)
  if check and p.returncode != 0:
    raise AssertionError(f'{script} {args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}')
  return p


def start(script, *args, devices=1):
  return subprocess.Popen([sys.executable, script, *args], cwd=ROOT, env=env(devices),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def records(workdir, drop_timing=True):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    out = [json.loads(line) for line in f]
  if drop_timing:
    out = [{k: v for k, v in r.items() if k not in TIMING} for r in out]
  return out


def final(workdir):
  with open(os.path.join(workdir, 'final_metrics.json')) as f:
    return json.load(f)
