"""The questions a sweep asks, answered: differences of group means with 95% intervals.

A sweep file may define `get_questions(arg)`: pairs of its groups, A and B, that
differ in one thing (nin.launch.sweep keeps them in sweep.json). Each is answered from
the finished runs: mean A minus mean B in accuracy, paired by seed where pairing narrows
the interval and Welch's otherwise (nin.experiments.stats), with its p-value adjusted for
the report's other questions (Holm), and a verdict that names a side only when the
interval excludes zero and the adjusted p is below 0.05, worded as holding at the budget
the runs were trained at.

A question may name the seeds that answer it ('seeds') and those that chose something
for it ('chose', e.g. the learning-rate grid's seeds): it is then answered on its own
seeds only, so that no run both chose a setting and judges it. Given the rerun spread
(`results.rerun_spread`: how far the same run trained again moved), each finding smaller
than the largest rerun move says so.
"""

from nin import workdir
from nin.errors import ConfigError
from nin.experiments import stats
from nin.launch import sweep


def _fmt(v, spec):
  return '—' if v is None else format(v, spec)


def load(root: str) -> list:
  """The questions the sweep's file asked (sweep.json), if any."""
  manifest = sweep.read_manifest(root)
  return [] if manifest is None else manifest.get('questions', [])


def answer(questions: list, runs: list, rows: list, reruns=None) -> list:
  """Each question's difference A - B (test and validation accuracy) with its interval, its
  p-value adjusted for the report's other questions (Holm), the seeds each side won, and a
  verdict bounded by the budget it was measured at (and, given `reruns`, the rerun spread
  of `results.rerun_spread`, by what a rerun alone moves)."""
  by_group = {r['group']: r for r in rows}
  answers = []
  for q in questions:
    out = dict(q)
    values = {}
    for side in ('a', 'b'):
      done = [r for r in runs if r['group'] == q[side] and r['status'] == 'finished'
              and ('seeds' not in q or r['seed'] in q['seeds'])]
      for key in ('test_accuracy', 'val_accuracy', 'test_accuracy_tta'):
        values[side, key] = {r['seed']: r['final'][key] for r in done
                             if r['final'].get(key) is not None}
    _refuse_the_same_groups(q, runs)
    if all(values[side, 'test_accuracy'] for side in ('a', 'b')):
      for key in ('test_accuracy', 'val_accuracy', 'test_accuracy_tta'):
        if values['a', key] and values['b', key]:
          out[key] = stats.difference(values['a', key], values['b', key])
      out['budget'] = budget(*(next(r for r in runs if r['group'] == q[side]
                                    and r['status'] == 'finished') for side in ('a', 'b')))
    for side in ('a', 'b'):
      row = by_group.get(q[side], {})
      out[side + '_size'] = {k: row.get(k) for k in ('params', 'macs')}
    answers.append(out)
  # Every question asked counts in Holm's m: one not yet testable (a side unfinished, or a
  # single seed) enters as p = 1, so that a sweep still training adjusts its findings for all
  # the questions it asks, not only for those answered so far.
  tests = [a.get('test_accuracy', {}).get('p') for a in answers]
  adjusted = stats.holm([1.0 if p is None else p for p in tests])
  for a, p in zip(answers, adjusted):
    if 'test_accuracy' not in a:
      a['verdict'], a['ahead'] = 'no finished run on one side', None
      continue
    if a['test_accuracy'].get('p') is not None:  # an untested question has no p to adjust
      a['test_accuracy']['p_holm'] = p
    a['verdict'] = stats.verdict(a['test_accuracy'], a['a'], a['b'],
                                 a['test_accuracy'].get('p_holm') if len(answers) > 1 else None,
                                 a['budget'])
    if reruns and ' is ahead' in a['verdict'] and abs(a['test_accuracy']['mean']) < reruns['max']:
      a['verdict'] += (f"; smaller than a rerun alone moved one run (up to "
                       f"{100 * reruns['max']:.2f} points)")
    # The side the verdict names ('a', 'b'), or None: what nin.experiments.ladder compares across budgets.
    a['ahead'] = (None if ' is ahead' not in a['verdict']
                  else 'a' if a['test_accuracy']['low'] > 0 else 'b')
  return answers


def _refuse_the_same_groups(q, runs) -> None:
  """A question whose two groups were trained with one config (their seeds aside) asks
  nothing: its interval would be a fake finding (e.g. an --override that collapsed them)."""
  configs = {}
  for side in ('a', 'b'):
    for r in runs:
      if r['group'] == q[side] and r['status'] == 'finished' and 'config' in r:
        config = r['config'].copy_and_resolve_references()
        config.seed = 0
        configs.setdefault(side, set()).add(workdir.config_to_json(config))
  if configs.get('a') and configs.get('a') == configs.get('b'):
    raise ConfigError(f"Question {q['id']}: its groups {q['a']} and {q['b']} were trained with "
                      f"the same config; no interval is computed between them")


def budget(run_a, run_b) -> str:
  """What a question's runs were trained with, in a verdict's words: the two nets' widths,
  the epochs and the training images ('nin at 1/8 width against plain_matched at widths
  12/24/40, 5 epochs, 45,000 images')."""
  from nin.train.validate import DATASET_SPECS
  if 'config' not in run_a or 'config' not in run_b:
    return ''
  config, final = run_a['config'], run_a['final']
  d = config.dataset
  n_train = DATASET_SPECS[d.name][2] or d.synthetic_train
  images = n_train - d.validation_examples
  if d.num_train > 0:
    images = min(images, d.num_train)
  return (f"{_width(run_a)} against {_width(run_b)}, {final['epochs']:.3g} epochs, "
          f"{images:,} images")


def _width(run) -> str:
  m = run['config'].model
  if 'stages' in m:  # The 3x3 nets: each stage's width.
    return f"{run['group']} at widths {'/'.join(str(s[0]) for s in m.stages)}"
  if 'widths' in m:  # airbench's net.
    return f"{run['group']} at widths {'/'.join(str(w) for w in m.widths)}"
  # The config's own divisor (the model resolves it away); nets without one are at full width.
  divisor = m.width_divisor if 'width_divisor' in m else 1
  if divisor > 1:
    return f"{run['group']} at 1/{divisor} width"
  if 'blocks' in m and isinstance(m.blocks, str) and m.blocks.lstrip().startswith('('):
    # A block table written out: its kxk convs' widths, as the model resolves them.
    from nin import registry
    widths = [str(b[1][0]) for b in registry.canonical_model(m)['blocks']]
    return f"{run['group']} at widths {'/'.join(widths)}"
  return f"{run['group']} at full width"


def _ratio(a, b) -> str:
  return '—' if not a or not b else f'{a / b:.2f}x'


def _fmt_diff(d) -> str:
  if d['low'] is None:
    return f"{100 * d['mean']:+.2f}"
  return f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def _seeds(seeds) -> str:
  return ', '.join(str(s) for s in seeds[:-1]) + ' and ' + str(seeds[-1]) if len(seeds) > 1 \
      else str(seeds[0])


def _test(t) -> str:
  """The seeds column: how many, the test, and the correlation that chose it."""
  r = '' if t.get('r') is None else f", r {t['r']:+.2f}"
  return f"{t['n']} paired{r}" if t['paired'] else f"{t['n']}, Welch{r}"


def seeds_lines(answers: list) -> list:
  """Which seeds answered the questions, and which chose a setting and so answer nothing."""
  lines = []
  for seeds, chose in dict.fromkeys((tuple(q['seeds']), tuple(q.get('chose', ())))
                                    for q in answers if q.get('seeds')):
    ids = [q['id'] for q in answers if tuple(q.get('seeds', ())) == seeds]
    whose = '' if len(ids) == len(answers) else f" ({', '.join(ids)})"
    lines.append(f'Answered on seeds {_seeds(seeds)} only{whose}' + (
        f': seeds {_seeds(chose)} chose the learning rates, and a run that chose a setting '
        f'does not also judge it.' if chose else '.'))
  return lines


def rerun_lines(reruns) -> list:
  if not reruns:
    return []
  return [f"Rerun spread: {reruns['pairs']} runs trained again with the same config and seed "
          f"from another commit moved test accuracy by {100 * reruns['mean']:.2f} points on "
          f"average, at most {100 * reruns['max']:.2f} ({', '.join(reruns['folders'])}). "
          f"A verdict's interval is over seeds at one commit and does not hold this spread: a "
          f"finding smaller than the largest move says so."]


def section(answers: list, reruns=None) -> list:
  if not answers:
    return []
  tta = any('test_accuracy_tta' in q for q in answers)
  lines = ['## Questions', '',
           'Each question compares two groups, A and B, that differ in one thing. The difference '
           'is mean A minus mean B in accuracy points with its 95% interval: paired by seed '
           '(Student\'s t over the per-seed differences) where the two groups\' runs of one seed '
           'move together (their correlation over the seeds r > 0, so that pairing narrows the '
           'interval), Welch\'s unpaired interval where they do not (r <= 0) or the seeds do '
           'not pair; the seeds column names the test and r. ' + (
               'p: its two-sided p-value, adjusted by Holm\'s method for the '
               f'{len(answers)} questions of this report (the chance of any false finding '
               'among them stays under 5%). A verdict names a side only when the test interval '
               'excludes zero and the adjusted p is below 0.05' if len(answers) > 1 else
               'p: its two-sided p-value (one question: nothing to adjust for). A verdict names '
               'a side only when the test interval excludes zero') +
           ', and holds at the budget it names: another width, schedule or data size may rank '
           'the nets otherwise. Won: the seeds on which A scored above B, of the pairs.'
           + (' TTA: the same difference with test-time augmentation.' if tta else ''), '']
  for extra in seeds_lines(answers) + rerun_lines(reruns):
    lines += [extra, '']
  lines += [
           '| question | A | B | params A / B | mult-adds A / B | test: A - B [95%] | p (Holm) '
           '| won |' + (' test, TTA: A - B [95%] |' if tta else '')
           + ' validation: A - B [95%] | seeds | verdict |',
           '|---|---|---|---:|---:|---:|---:|---:|' + ('---:|' if tta else '') + '---:|---:|---|']
  for q in answers:
    a, b = q['a_size'], q['b_size']
    sizes = [f"{_fmt(a[k], ',')} / {_fmt(b[k], ',')} ({_ratio(a[k], b[k])})"
             for k in ('params', 'macs')]
    test, val = (_fmt_diff(q[k]) if k in q else '—' for k in ('test_accuracy', 'val_accuracy'))
    t = q.get('test_accuracy', {})
    p = _fmt(t.get('p_holm', t.get('p')), '.2g')
    won = f"{t['a_won']} of {t['pairs']}" if 'a_won' in t else '—'
    n = _test(t) if t else '—'
    with_tta = (f" {_fmt_diff(q['test_accuracy_tta']) if 'test_accuracy_tta' in q else '—'} |"
                if tta else '')
    lines.append(f"| **{q['id']}** {q['question']} | {q['a']} | {q['b']} | {sizes[0]} "
                 f"| {sizes[1]} | {test} | {p} | {won} |{with_tta} {val} | {n} "
                 f"| {q['verdict']} |")
  return lines + ['']


def chosen_learning_rates(rows: list) -> list:
  """For a learning-rate grid (groups named 'group@lr<rate>'): per group, each rate's mean
  validation accuracy and the rate that scored best, [{'group', 'rates', 'chosen', 'finished',
  'expected'}]. The choice reads validation accuracy only, never the test split, and is made
  only once every run of the group's grid has finished ('chosen' is None until then: a rate
  with one seed of two, or none, cannot lose fairly)."""
  grid = {}
  for row in rows:
    group, sep, rate = row['group'].partition('@lr')
    if not sep:
      continue
    g = grid.setdefault(group, {'group': group, 'rates': {}, 'finished': 0, 'expected': 0})
    g['finished'] += row['finished']
    g['expected'] += row['expected']
    if row.get('val_accuracy_mean') is not None:
      g['rates'][float(rate)] = row['val_accuracy_mean']
  for g in grid.values():
    complete = g['rates'] and g['finished'] == g['expected']
    g['chosen'] = max(g['rates'], key=g['rates'].get) if complete else None
  return [g for g in grid.values() if g['rates']]


def learning_rate_section(choices: list) -> list:
  if not choices:
    return []
  rates = sorted({r for c in choices for r in c['rates']})
  lines = ['## Learning rates chosen on validation', '',
           'Mean validation accuracy of each group at each peak learning rate of the grid; '
           'the chosen rate is the best (bold). The test split plays no part in it. A choice '
           "at the grid's edge is marked: the best rate may lie beyond it."
           + (' A group whose grid has runs still to finish has no choice yet.'
              if any(c['chosen'] is None for c in choices) else ''), '',
           '| group | ' + ' | '.join(f'{r:g}' for r in rates) + ' | chosen |',
           '|---|' + '---:|' * len(rates) + '---:|']
  for c in choices:
    cells = [('**{:.2%}**' if r == c['chosen'] else '{:.2%}').format(c['rates'][r])
             if r in c['rates'] else '—' for r in rates]
    if c['chosen'] is None:
      chosen = f"not yet ({c['finished']} of {c['expected']} runs)"
    else:
      edge = " (grid's edge)" if c['chosen'] in (min(c['rates']), max(c['rates'])) else ''
      chosen = f"{c['chosen']:g}{edge}"
    lines.append(f"| {c['group']} | " + ' | '.join(cells) + f' | {chosen} |')
  return lines + ['']
