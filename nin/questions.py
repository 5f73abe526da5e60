"""The questions a sweep asks, answered: differences of group means with 95% intervals.

A sweep file may define `get_questions(arg)`: pairs of its groups, A and B, that
differ in one thing (nin.sweep keeps them in sweep.json). Each is answered from
the finished runs: mean A minus mean B in accuracy, paired by seed (nin.stats),
and a verdict that names a side only when the interval excludes zero.
"""

from nin import stats, sweep


def _fmt(v, spec):
  return '—' if v is None else format(v, spec)


def load(root: str) -> list:
  """The questions the sweep's file asked (sweep.json), if any."""
  manifest = sweep.read_manifest(root)
  return [] if manifest is None else manifest.get('questions', [])


def answer(questions: list, runs: list, rows: list) -> list:
  """Each question's difference A - B (test and validation accuracy) with its interval and verdict."""
  by_group = {r['group']: r for r in rows}
  answers = []
  for q in questions:
    out = dict(q)
    values = {}
    for side in ('a', 'b'):
      done = [r for r in runs if r['group'] == q[side] and r['status'] == 'finished']
      for key in ('test_accuracy', 'val_accuracy'):
        values[side, key] = {r['seed']: r['final'][key] for r in done}
    if all(values[side, 'test_accuracy'] for side in ('a', 'b')):
      for key in ('test_accuracy', 'val_accuracy'):
        out[key] = stats.difference(values['a', key], values['b', key])
      out['verdict'] = stats.verdict(out['test_accuracy'], q['a'], q['b'])
    else:
      out['verdict'] = 'no finished run on one side'
    for side in ('a', 'b'):
      row = by_group.get(q[side], {})
      out[side + '_size'] = {k: row.get(k) for k in ('params', 'macs')}
    answers.append(out)
  return answers


def _fmt_diff(d) -> str:
  if d['low'] is None:
    return f"{100 * d['mean']:+.2f}"
  return f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def section(answers: list) -> list:
  if not answers:
    return []
  lines = ['## Questions', '',
           'Each question compares two groups, A and B, that differ in one thing. The difference '
           'is mean A minus mean B in accuracy points with its 95% interval, paired by seed '
           '(Student\'s t over the per-seed differences; Welch\'s interval where the seeds do '
           'not pair). A verdict names a side only when the test interval excludes zero.', '',
           '| question | A | B | params A / B | mult-adds A / B | test: A - B [95%] '
           '| validation: A - B [95%] | seeds | verdict |',
           '|---|---|---|---:|---:|---:|---:|---:|---|']
  for q in answers:
    a, b = q['a_size'], q['b_size']
    sizes = [f"{_fmt(a[k], ',')} / {_fmt(b[k], ',')}" for k in ('params', 'macs')]
    test, val = (_fmt_diff(q[k]) if k in q else '—' for k in ('test_accuracy', 'val_accuracy'))
    n = (f"{q['test_accuracy']['n']}{' paired' if q['test_accuracy']['paired'] else ''}"
         if 'test_accuracy' in q else '—')
    lines.append(f"| **{q['id']}** {q['question']} | {q['a']} | {q['b']} | {sizes[0]} "
                 f"| {sizes[1]} | {test} | {val} | {n} | {q['verdict']} |")
  return lines + ['']
