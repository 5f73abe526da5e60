r"""The same questions answered at several budgets, side by side: does the ranking hold?

  python -m nin ladder runs/questions_cpu runs/questions_ladder > ladder.md
  python -m nin ladder runs/questions_cpu runs/questions_ladder --reruns runs/questions_rerun

Each folder is a sweep of the same questions (configs/sweeps/questions.py at one
rung of its budget ladder). For every question, each budget's answer (nin.experiments.report
reads it from the runs' files: A - B with its 95% interval, the Holm-adjusted p,
the verdict) stands in one row, and one sentence says whether the ranking moved
between the rungs: the same side ahead at every budget, a side ahead at some
budgets only, or opposite sides ahead (the ranking moved). A rung whose sweep has
not finished answers with the seeds it has, and says so: its cell names the seeds,
and the sentence is marked as not final. With --reruns (folders of runs trained
again), every cell stands beside the rerun spread, and a finding smaller than it
says so. A second table says, per rung, how many runs levelled off and by how much
the others still moved.
"""
import os

from absl import flags

from nin.experiments import questions, results


def answers(root: str, reruns=None) -> dict:
  """{question id: answer} of the sweep in `root`, with the budget it was trained at and
  'progress': (finished, expected) runs of its less finished group (of the seeds that answer)."""
  runs = results.collect(root)
  rows = {r['group']: r for r in results.group_rows(runs)}
  out = {}
  for a in questions.answer(questions.load(root), runs, list(rows.values()), reruns):
    answering = [r for r in runs if 'seeds' not in a or r['seed'] in a['seeds']]
    a['progress'] = min(((sum(r['status'] == 'finished' for r in answering if r['group'] == g),
                          sum(r['group'] == g for r in answering)) for g in (a['a'], a['b'])
                         if g in rows), key=lambda fe: fe[0] / max(fe[1], 1), default=(0, 0))
    out[a['id']] = a
  return out


def movement(rungs: list) -> str:
  """Whether the ranking moved over the answers of one question at each budget (None: the
  question was not asked at that budget; an answer without an interval: no finished run on
  one side yet, or a single seed)."""
  asked = [a for a in rungs if a is not None]
  answered = [a for a in asked if a.get('test_accuracy', {}).get('low') is not None]
  if not asked:
    return 'not asked'
  if len(answered) < 2:
    return 'answered at fewer than two budgets: nothing to compare yet'
  sides = [a.get('ahead') for a in answered]
  named = {s for s in sides if s is not None}
  if len(named) > 1:
    text = 'the ranking moved: opposite sides are ahead at different budgets'
  elif not named:
    text = 'not resolved at any budget'
  elif None in sides:
    text = 'a side is ahead at some budgets only'
  else:
    text = 'the same side is ahead at every budget'
  unfinished = len(answered) < len(asked) or any(
      a.get('progress', (0, 0))[0] < a.get('progress', (0, 0))[1] for a in answered)
  return text + (' (so far: a budget\'s runs have not all finished)' if unfinished else '')


def levelling(root: str) -> dict:
  """How close the finished runs of the sweep in `root` came to levelling off: their count,
  how many could be judged and levelled off, and by how much the others still moved over
  the last fifth of training (highest minus lowest validation accuracy)."""
  done = [r for r in results.collect(root) if r['status'] == 'finished']
  judged = [r for r in done if results.levelled(r) is not None]
  return {'finished': len(done), 'judged': len(judged),
          'levelled': sum(results.levelled(r) for r in judged),
          'still_moving': sorted(results.last_fifth_spread(r) for r in judged
                                 if not results.levelled(r))}


def _levelling_lines(roots: list) -> list:
  lines = ['', '## Did validation level off?', '',
           'Levelled off: validation accuracy stayed within one point over the last fifth of '
           'training (each run\'s figure is in its rung\'s report, table Runs). Where it did not, '
           'validation accuracy was still changing when the schedule ended, and each verdict '
           'holds for that schedule only.', '',
           '| rung | finished runs | levelled off | the others moved over the last fifth by |',
           '|---|---:|---:|---|']
  for root in roots:
    lv = levelling(root)
    moving = lv['still_moving']
    by = (f'{100 * moving[0]:.1f} to {100 * moving[-1]:.1f} points' if len(moving) > 1 else
          f'{100 * moving[0]:.1f} points' if moving else '—')
    lines.append(f"| `{root}` | {lv['finished']} | {lv['levelled']} of {lv['judged']} | {by} |")
  return lines


def markdown(roots: list, reruns=()) -> str:
  spread = results.rerun_spread(reruns) if reruns else None
  per_root = [answers(r, spread) for r in roots]
  ids = list(dict.fromkeys(q for a in per_root for q in a))
  lines = ['# The questions across budgets', '',
           'Each cell: A - B in test accuracy points [95% interval], the Holm-adjusted p, '
           'the test (paired by seed where the seeds move both groups together, r > 0; '
           'Welch\'s otherwise) and the verdict, at the budget in its column (the budget each '
           'verdict names).', '']
  for root, by_id in zip(roots, per_root):
    said = questions.seeds_lines(list(by_id.values()))
    lines += [f'- `{root}`: ' + (' '.join(said) if said else 'every finished seed answers.')]
  lines += ['']
  for extra in questions.rerun_lines(spread):
    lines += [extra, '']
  lines += ['| question | ' + ' | '.join(f'`{r}`' for r in roots) + ' | across budgets |',
           '|---|' + '---|' * len(roots) + '---|']
  for q in ids:
    cells, rungs = [], []
    for a in per_root:
      answer = a.get(q)
      rungs.append(answer)
      if answer is None or 'test_accuracy' not in answer:
        cells.append('—' if answer is None else answer['verdict'])
        continue
      t = answer['test_accuracy']
      done, expected = answer.get('progress', (0, 0))
      so_far = f' ({done} of {expected} seeds so far)' if done < expected else ''
      p = f", p {questions._fmt(t['p_holm'], '.2g')}" if 'p_holm' in t else ''
      cells.append(f"{questions._fmt_diff(t)}{p}, {questions._test(t)}: "
                   f"{answer['verdict']}{so_far}")
    first = next(a for a in rungs if a is not None)
    lines.append(f"| **{q}** {first['question']} (A: {first['a']}, B: {first['b']}) | "
                 + ' | '.join(cells) + f' | {movement(rungs)} |')
  return '\n'.join(lines + _levelling_lines(roots)) + '\n'


def define_flags():
  flags.DEFINE_list('reruns', [], 'Folders holding runs trained again with the same config '
                    'and seed from another commit: every answer stands beside how far such a '
                    'rerun moved (nin.experiments.results.rerun_spread).')


def main(argv):
  from absl import app
  if len(argv) < 3:
    raise app.UsageError('Usage: python -m nin ladder SWEEP_DIR SWEEP_DIR [...] '
                         '[--reruns DIR,DIR]', 2)
  for folder in flags.FLAGS.reruns:
    if not os.path.isdir(folder):
      raise app.UsageError(f'--reruns {folder}: no such folder', 2)
  print(markdown(argv[1:], flags.FLAGS.reruns), end='')
