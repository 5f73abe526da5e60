r"""One prepared check of an accelerator: speed, correctness and training, in one call.

  python -m nin device_check --out DIR --image_dir /data/CIFAR-10-images   # a GPU: ~9 min
  python -m nin device_check --out DIR --tiny                              # any CPU: ~2 min

It writes DIR/device_check.json (everything), DIR/device_check.md (a summary)
and DIR/device_check.log (every part's output). docs/gpu/README.md says how
to carry it to a GPU machine without internet. The parts, in order:

  environment  devices, versions, XLA flags, JAX's accelerator plugins
  gradients    one step's gradients through the project's BatchNorm and 1x1 layers
               (gradients written by hand) against stock flax's, in float32 and bfloat16
  bench        the matmul peak, and every family's training step at batch 1024 in
               float32 and bfloat16: images/s, share of the peak, the operand types
               of its matrix products (bfloat16 is what tensor cores take)
  airbench     configs/plain.py:airbench on all 50,000 images, seed after seed
  airbench_muon  configs/plain.py:airbench_muon (airbench94_muon's recipe) likewise
  nin_quarter  configs/nin.py:fast at a quarter of NiN's widths (45,000 images, 5,000
               for validation), and nin_quarter_muon the same with Muon (`fast,muon`)
  nin          configs/nin.py:fast at full width
  googlenet    configs/googlenet.py:fast at full width
  peers        PyTorch's NiN step on the same device (benchmarks/torch_nin.py)

Each part runs in a process of its own with a time budget of its own: at the
budget it is asked to stop (SIGTERM: a training run saves and stops), then
killed, and the next part starts; a part that fails or hangs costs only its
budget. Results are written after every part, and every part writes its own
after every measurement. The parent process never imports JAX, so each part
has the device to itself.

`--tiny` runs the same code on this machine's CPU in a couple of minutes: the
narrow nets of `nin.checks.bench --quick`, four training steps of each run on the
digits (or on `--image_dir`), small gradient checks. tests/test_device_check.py runs it.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from nin.runtime import children

PARTS = ('environment', 'gradients', 'bench', 'airbench', 'airbench_muon', 'nin_quarter',
         'nin_quarter_muon', 'nin', 'googlenet', 'determinism', 'peers')
# Seconds per part on an accelerator; they add up to 9.75 minutes, and the total is capped
# by --budget_sec. --tiny scales them down (a CPU has more to compile than to run).
BUDGETS = {'environment': 20, 'gradients': 40, 'bench': 110, 'airbench': 80, 'airbench_muon': 80,
           'nin_quarter': 45, 'nin_quarter_muon': 45, 'nin': 50, 'googlenet': 50, 'determinism': 40,
           'peers': 25}
_GRACE_SEC = 30  # After SIGTERM: a training run saves its checkpoint and stops.
_FILES = ('device_check.json', 'device_check.md', 'device_check.log')


def define_flags():
  from absl import flags
  flags.DEFINE_string('out', None, 'Folder for device_check.json, .md and .log.')
  flags.DEFINE_string('image_dir', '', 'CIFAR-10 as ROOT/{train,test}/<class>/*.png|jpg '
                      '(nin/data/image_folder.py); empty: TFDS as configured.')
  flags.DEFINE_bool('tiny', False, 'Narrow nets, a few steps, small shapes: the same code on a '
                    'CPU in minutes.')
  flags.DEFINE_list('parts', list(PARTS), 'Parts to run, in this order.')
  flags.DEFINE_integer('budget_sec', 540, 'Time for the whole check; each part gets its own '
                       'budget (BUDGETS), cut to what is left.')
  flags.DEFINE_integer('seeds', 5, 'At most this many seeds per training part.')
  flags.DEFINE_string('train_dtype', 'auto', 'Compute dtype of the training parts: float32, '
                      'bfloat16, or auto (bfloat16 on an accelerator, float32 on a CPU).')
  flags.DEFINE_integer('batch_size', 1024, 'Batch of the bench and peers parts (--tiny: 8).')
  flags.DEFINE_string('part', '', 'Internal: run this one part in this process.')
  flags.DEFINE_string('scratch', '', 'Internal: the parts\' folder.')
  flags.mark_flag_as_required('out')


def check_flags(f) -> None:
  from nin.errors import ConfigError
  bad = [p for p in f.parts if p not in PARTS]
  if bad or not f.parts:
    raise ConfigError(f'--parts={",".join(f.parts)}: unknown {", ".join(bad) or "(empty)"}; '
                      f'valid: {", ".join(PARTS)}')
  if f.train_dtype not in ('auto', 'float32', 'bfloat16'):
    raise ConfigError(f'--train_dtype={f.train_dtype}: valid: auto, float32, bfloat16')
  for name in ('budget_sec', 'seeds', 'batch_size'):
    if getattr(f, name) <= 0:
      raise ConfigError(f'--{name}={getattr(f, name)} must be positive')
  if f.image_dir and not os.path.isdir(f.image_dir):
    raise ConfigError(f'--image_dir={f.image_dir} is not a folder')
  from nin import workdir
  place = os.path.abspath(f.out)  # Refused before the check runs, not after it.
  while not os.path.exists(place):
    place = os.path.dirname(place)
  workdir.check_writable(place, 'the folder of --out', files=_FILES if place == os.path.abspath(
      f.out) else ())


# ----------------------------------------------------------------------------- the parent

def _child_args(f, part, scratch, budget) -> list:
  args = [sys.executable, '-m', 'nin', 'device_check', f'--part={part}', f'--scratch={scratch}',
          f'--out={f.out}', f'--image_dir={f.image_dir}', f'--seeds={f.seeds}',
          f'--train_dtype={f.train_dtype}', f'--batch_size={f.batch_size}',
          f'--budget_sec={int(budget)}']
  return args + (['--tiny'] if f.tiny else [])


def _run_part(f, part, scratch, budget, log) -> dict:
  """Runs one part in its own process within `budget` seconds; returns its results."""
  path = os.path.join(scratch, f'{part}.json')
  t = time.time()
  part_log = os.path.join(scratch, f'{part}.log')
  with open(part_log, 'w') as out:
    # Its own process group (stopped whole at its budget), killed with this process
    # however this one dies (SIGKILL included).
    p = subprocess.Popen(_child_args(f, part, scratch, budget), stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True,
                         preexec_fn=children.die_with_parent(signal.SIGKILL))
  try:
    p.wait(timeout=budget)
    status = 'ok' if p.returncode == 0 else f'failed (exit {p.returncode}): {_last_line(part_log)}'
  except BaseException as e:  # Ctrl-C or SIGTERM to the check: the part stops with it.
    if isinstance(e, subprocess.TimeoutExpired):
      status = None
    else:
      _kill_group(p)
      raise
  if status is None:
    p.send_signal(signal.SIGTERM)
    try:
      p.wait(timeout=_GRACE_SEC)
    except subprocess.TimeoutExpired:
      _kill_group(p)
    status = 'stopped at its budget'
  with open(part_log) as fh:
    log.write(f'\n===== {part} (budget {budget:.0f} s): {status}\n{fh.read()}')
    log.flush()
  try:
    with open(path) as fh:
      result = json.load(fh)
  except (OSError, ValueError):
    result = {}
  result.update(status=status, wall_sec=round(time.time() - t, 1), budget_sec=budget)
  return result


def _kill_group(p) -> None:
  try:
    os.killpg(p.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  p.wait()


_SCRATCH_PREFIX = 'nin_device_check_'


def _remove_stale_scratch() -> None:
  """Removes the scratch folders of earlier checks whose process is gone (a SIGKILLed check
  cannot remove its own): each is named after its process's id."""
  root = tempfile.gettempdir()
  for name in os.listdir(root):
    pid = name[len(_SCRATCH_PREFIX):].split('_')[0] if name.startswith(_SCRATCH_PREFIX) else ''
    if pid.isdigit() and not os.path.exists(f'/proc/{pid}') and os.path.isdir('/proc'):
      shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _stop_on_sigterm(signum, frame):
  raise KeyboardInterrupt  # Unwinds like Ctrl-C: the part is killed, the scratch removed.


def _last_line(path) -> str:
  with open(path) as fh:
    lines = [line.strip() for line in fh if line.strip()]
  return lines[-1][:300] if lines else '(no output)'


def _budget(part, remaining, tiny, left) -> float:
  """The part's own budget, or, when less is left than the remaining parts' budgets add
  up to, its share of what is left (so that a short check still reaches every part)."""
  scale = 3 if tiny else 1  # A CPU compiles slowly: tiny runs get longer.
  own, wanted = BUDGETS[part] * scale, sum(BUDGETS[p] for p in remaining) * scale
  # A part stopped at its budget may take up to _GRACE_SEC more to save and stop. While
  # later parts wait, that grace comes out of what is shared, not out of their shares.
  grace = _GRACE_SEC if len(remaining) > 1 else 0
  return max(0.0, own if left >= wanted + grace else (left - grace) * own / wanted)


def check(f) -> dict:
  """Runs every part in turn and writes DIR/device_check.{json,md} after each."""
  from nin.checks import device_report
  os.makedirs(f.out, exist_ok=True)
  start = time.time()
  results = {'settings': {'tiny': f.tiny, 'parts': list(f.parts), 'budget_sec': f.budget_sec,
                          'seeds': f.seeds, 'train_dtype': f.train_dtype,
                          'batch_size': 8 if f.tiny else f.batch_size,
                          'image_dir': bool(f.image_dir), 'command': sys.argv[1:]},
             'parts': {}}
  _remove_stale_scratch()
  signal.signal(signal.SIGTERM, _stop_on_sigterm)
  with tempfile.TemporaryDirectory(prefix=f'{_SCRATCH_PREFIX}{os.getpid()}_') as scratch, \
      open(os.path.join(f.out, _FILES[2]), 'a') as log:
    if f.image_dir:  # Decoded once, here (no JAX), so that no part's budget pays for it.
      from nin import data
      from nin.data import image_folder
      t = time.time()
      image_folder.load(f.image_dir, data.CIFAR10_CLASSES)
      results['data'] = {'image_dir_decode_or_cache_sec': round(time.time() - t, 1)}
    for i, part in enumerate(f.parts):
      budget = _budget(part, f.parts[i:], f.tiny, f.budget_sec - (time.time() - start))
      if budget < 5:
        results['parts'][part] = {'status': 'not run: the check\'s budget was spent'}
      else:
        results['parts'][part] = _run_part(f, part, scratch, budget, log)
      print(f"{part}: {results['parts'][part]['status']}", flush=True)
      results['wall_sec'] = round(time.time() - start, 1)
      _write(f.out, results, device_report.markdown(results))
  return results


def _write(out, results, md) -> None:
  for name, text in ((_FILES[0], json.dumps(results, indent=1) + '\n'), (_FILES[1], md)):
    tmp = os.path.join(out, f'.{name}.tmp')
    with open(tmp, 'w') as fh:
      fh.write(text)
    os.replace(tmp, os.path.join(out, name))


# ----------------------------------------------------------------------------- a part

def _dtype(f) -> str:
  if f.train_dtype != 'auto':
    return f.train_dtype
  import jax
  return 'float32' if jax.default_backend() == 'cpu' else 'bfloat16'


def run_part(f) -> None:
  from nin.checks import device_parts as parts
  deadline = time.time() + f.budget_sec
  rec = parts.Record(os.path.join(f.scratch, f'{f.part}.json'))
  batch = 8 if f.tiny else f.batch_size
  dtypes = ('float32',) if f.tiny else ('float32', 'bfloat16')
  if f.part == 'environment':
    parts.environment(rec)
  elif f.part == 'gradients':
    parts.gradients(rec, f.tiny)
  elif f.part == 'bench':
    parts.bench(rec, f.tiny, batch, dtypes)
  elif f.part == 'peers':
    parts.peers(rec, f.tiny, batch, dtypes)
  elif f.part == 'determinism':
    from nin.runtime import determinism
    setting = determinism.require()  # Its XLA flag reaches JAX before anything starts it.
    parts.determinism(rec, setting, f.tiny, f.image_dir, _dtype(f), f.scratch)
  else:
    # Seeds after the first load their compiled steps from disk instead of compiling
    # them again (one process builds fresh jitted functions per run).
    import jax
    jax.config.update('jax_compilation_cache_dir', os.path.join(f.scratch, 'jax_cache'))
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
    parts.train(rec, f.part, f.tiny, f.image_dir, _dtype(f), f.seeds, deadline, f.scratch)


def main(argv):
  from absl import app, flags
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  f = flags.FLAGS
  if f.part:
    return run_part(f)
  return _main(f)


def _main(f) -> int:
  """0 when every part ran (or stopped at its budget) and every gradient check passed."""
  check_flags(f)
  results = check(f)
  problems = [f'{name}: {p["status"]}' for name, p in results['parts'].items()
              if not p['status'].startswith(('ok', 'stopped', 'not run'))]
  problems += [f"gradients: {c['dtype']} ({c['matmul_precision']}) differ from stock flax's "
               f"by {c['max_error_over_max_gradient']:.1e}"
               for c in results['parts'].get('gradients', {}).get('checks', []) if not c['ok']]
  for line in problems:
    print(f'Problem: {line}', file=sys.stderr, flush=True)
  print(f"Results in {os.path.join(f.out, _FILES[0])} and {_FILES[1]}", flush=True)
  return 1 if problems else 0
