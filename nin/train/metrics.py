"""Metrics: a JSON-lines file, TensorBoard events and a terminal progress line.

`workdir/metrics.jsonl` holds one record per line, each with `step` and
`kind`: 'train' (loss, accuracy, learning rate, speed), 'eval' (on the
validation split: `val_loss`, `val_accuracy`, `val_predicted` counts per class)
or 'final' (the summary, with the test split's figures). It is the source of truth for reports
and notebooks (`read_metrics`); TensorBoard gets the same scalars. When a run
resumes from step k, records after k (written after the checkpoint the run
resumes from) are dropped, so the file reads as if never interrupted.
"""
import json
import os
import sys

import jax
from tensorboardX import SummaryWriter

from nin.errors import DataError
from nin.workdir import METRICS_FILE, TENSORBOARD, write_atomically


def read_metrics(workdir: str, kind=None) -> list:
  """The records of `workdir/metrics.jsonl` (of one kind, if given).

  A last line cut short (a crash or a full disk in the middle of a write) is
  dropped with a warning: a resumed run writes that record again. Any other line
  that is not a record is a DataError naming it.
  """
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      record = json.loads(line)
      if not (isinstance(record, dict) and isinstance(record.get('step'), int)
              and isinstance(record.get('kind'), str)):
        raise ValueError('not a record')
      records.append(record)
    except ValueError:
      if i < len(lines) - 1:
        raise DataError(f'{path}: line {i + 1} is not a record of this project '
                        f'({line[:40].strip()!r}); the file is damaged: restore it, or delete '
                        f'that line') from None
      print(f'Warning: {path}: its last line is cut short ({line[:40].strip()}...); '
            f'ignoring it', file=sys.stderr)
  return [r for r in records if kind is None or r['kind'] == kind]


class MetricWriter:
  """Writes on host 0 only; every host may call it, and every host keeps `records`.

  `records` (what the file holds, in memory) is what the final summary reads,
  so a metrics file deleted during a run is written again, whole, at `close`.
  """

  def __init__(self, workdir: str, resume_step: int = 0, total_steps: int = 0):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, METRICS_FILE)
    self._bar = None
    self.records = [r for r in read_metrics(workdir)
                    if r['step'] <= resume_step and r['kind'] != 'final']
    if not self.active:
      return
    write_atomically(self.path, ''.join(json.dumps(r) + '\n' for r in self.records))
    self._file = open(self.path, 'a')
    self._tb = SummaryWriter(os.path.join(workdir, TENSORBOARD))
    if sys.stderr.isatty():
      from tqdm import tqdm
      self._bar = tqdm(total=total_steps, initial=resume_step, unit='step', dynamic_ncols=True)

  def read(self, kind: str) -> list:
    return [r for r in self.records if r['kind'] == kind]

  def write(self, kind: str, step: int, **scalars) -> None:
    record = {'kind': kind, 'step': int(step), **{k: _plain(v) for k, v in scalars.items()}}
    self.records.append(record)
    if not self.active:
      return
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()
    for k, v in record.items():
      if k not in ('kind', 'step') and isinstance(v, (int, float)):
        self._tb.add_scalar(f'{kind}/{k}', v, step)
    self._show(kind, step, record)

  def _show(self, kind, step, r):
    if kind == 'train':
      speed = f"  {r['images_per_sec']:.0f} img/s" if r.get('images_per_sec') else ''
      text = f"loss {r['loss']:.4f}  acc {r['accuracy']:.3f}  lr {r['learning_rate']:.4g}{speed}"
    elif kind == 'eval':
      text = f"val loss {r['val_loss']:.4f}  val acc {r['val_accuracy']:.4f}"
    else:
      return
    if self._bar is not None:
      self._bar.n = step
      self._bar.set_postfix_str(text, refresh=True)
      if kind == 'eval':
        self._bar.write(f'step {step}: {text}')
    elif kind == 'eval' or not sys.stderr.isatty():
      print(f'step {step}: {text}', flush=True)

  def close(self) -> None:
    if not self.active or self._file.closed:
      return
    if self._bar is not None:
      self._bar.close()
    self._file.close()
    self._tb.close()
    if not os.path.exists(self.path):  # Deleted while the run wrote it: nothing is lost.
      with open(self.path, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in self.records)


def _plain(v):
  if hasattr(v, 'item'):
    v = v.item()
  return round(v, 6) if isinstance(v, float) else v
