r"""The same questions answered at several budgets, side by side: does the ranking hold?

  python -m nin.ladder runs/questions_cpu runs/questions_ladder > ladder.md

Each folder is a sweep of the same questions (configs/sweeps/questions.py at one
rung of its budget ladder). For every question, each budget's answer (nin.report
reads it from the runs' files: A - B with its 95% interval, the Holm-adjusted p,
the verdict) stands in one row, and one sentence says whether the ranking moved
between the rungs: the same side ahead at every budget, a side ahead at some
budgets only, or opposite sides ahead (the ranking moved).
"""
import sys

from nin import questions, results


def answers(root: str) -> dict:
  """{question id: answer} of the sweep in `root`, with the budget it was trained at."""
  runs = results.collect(root)
  rows = results.group_rows(runs)
  return {a['id']: a for a in questions.answer(questions.load(root), runs, rows)}


def movement(rungs: list) -> str:
  """Whether the ranking moved over the answers of one question at each budget (None: the
  question was not asked at that budget)."""
  sides = [a.get('ahead') for a in rungs if a is not None]
  named = {s for s in sides if s is not None}
  if not sides:
    return 'not asked'
  if len(named) > 1:
    return 'the ranking moved: opposite sides are ahead at different budgets'
  if not named:
    return 'not resolved at any budget'
  if None in sides:
    return 'a side is ahead at some budgets only'
  return 'the same side is ahead at every budget'


def markdown(roots: list) -> str:
  per_root = [answers(r) for r in roots]
  ids = list(dict.fromkeys(q for a in per_root for q in a))
  lines = ['# The questions across budgets', '',
           'Each cell: A - B in test accuracy points [95% interval], the Holm-adjusted p, '
           'and the verdict, at the budget in its column (the budget each verdict names).', '',
           '| question | ' + ' | '.join(f'`{r}`' for r in roots) + ' | across budgets |',
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
      cells.append(f"{questions._fmt_diff(t)}, p {questions._fmt(t.get('p_holm'), '.2g')}: "
                   f"{answer['verdict']}")
    first = next(a for a in rungs if a is not None)
    lines.append(f"| **{q}** {first['question']} (A: {first['a']}, B: {first['b']}) | "
                 + ' | '.join(cells) + f' | {movement(rungs)} |')
  return '\n'.join(lines) + '\n'


def main(argv):
  from absl import app
  from nin import cli
  if len(argv) < 3:
    raise app.UsageError('Usage: python -m nin.ladder SWEEP_DIR SWEEP_DIR [...]', 2)
  return cli.run(lambda: print(markdown(argv[1:]), end=''))


if __name__ == '__main__':
  from nin import cli
  sys.exit(cli.main(main))
