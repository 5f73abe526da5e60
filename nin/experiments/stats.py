"""Intervals and verdicts for comparisons over seeds: what a report may call a finding.

Each group of a sweep is a few seeds of one config, so its mean accuracy is
uncertain, and so is the difference between two groups. A difference is a
finding only when its 95% interval excludes zero (`verdict`).

- `mean_interval`: Student's t interval of a mean over seeds.
- `difference`: the difference of two groups' means, paired by seed where pairing
  narrows it (a seed fixes the data order of both groups' runs; where their
  accuracies move together over the seeds, r > 0, the per-seed differences cancel
  what the seed does to both), Welch's unpaired interval otherwise (r <= 0: the
  differences then vary at least as much as the groups, or the seeds do not pair);
  with its two-sided p-value, the test used and why, and the seeds on which A beat B.
- `holm`: p-values adjusted for asking several questions of one report (Holm's
  step-down method: the chance of any false finding among them stays under 5%).
- `binomial_se`: the sampling error of one run's accuracy on a finite test set.
- `levelled_off`: whether a validation curve had stopped rising;
  `last_fraction_spread`: by how much it had not.
"""
import math

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95


def t_quantile(dof: float, level: float = LEVEL) -> float:
  """The two-sided Student's t critical value (e.g. 2.776 for 4 degrees of freedom)."""
  return float(scipy_stats.t.ppf(0.5 + level / 2, dof))


def mean_interval(values, level: float = LEVEL) -> dict:
  """{'mean', 'half_width', 'low', 'high', 'n'}; half_width is None for a single value."""
  a = np.asarray(values, float)
  if a.size == 0:
    raise ValueError('mean_interval of no values')
  mean = float(a.mean())
  if a.size == 1:
    return {'mean': mean, 'half_width': None, 'low': None, 'high': None, 'n': 1}
  half = t_quantile(a.size - 1, level) * float(a.std(ddof=1)) / math.sqrt(a.size)
  return {'mean': mean, 'half_width': half, 'low': mean - half, 'high': mean + half, 'n': int(a.size)}


def seed_correlation(a_by_seed: dict, b_by_seed: dict):
  """Pearson's r of A's and B's values over the seeds both have: positive when a seed moves
  both groups' runs the same way, which is when pairing by seed narrows an interval (the
  variance of a difference is var A + var B - 2 cov). None under 3 common seeds (two points
  always correlate perfectly) or where one side does not vary."""
  common = sorted(set(a_by_seed) & set(b_by_seed))
  a = np.array([a_by_seed[s] for s in common], float)
  b = np.array([b_by_seed[s] for s in common], float)
  if len(common) < 3 or a.std() == 0 or b.std() == 0:
    return None
  return float(np.corrcoef(a, b)[0, 1])


def difference(a_by_seed: dict, b_by_seed: dict, level: float = LEVEL) -> dict:
  """The mean of A minus the mean of B with its interval.

  Paired over the seeds both groups finished ('paired': True, 'n' pairs) when there are
  at least two and pairing narrows the interval: their values correlate positively over
  the common seeds ('r' > 0), or there are too few to tell (2, 'r' None). Otherwise
  Welch's unequal-variance interval over all values of each ('paired': False): where
  r <= 0 the per-seed differences vary at least as much as the groups themselves, so
  pairing would only cost degrees of freedom. 'low'/'high' are None when no interval can
  be formed (fewer than two values on a side). 'a_won'/'b_won': the common seeds on which
  each side scored higher, of 'pairs'.
  """
  common = sorted(set(a_by_seed) & set(b_by_seed))
  diffs = [a_by_seed[s] - b_by_seed[s] for s in common]
  won = {'pairs': len(common), 'a_won': sum(x > 0 for x in diffs),
         'b_won': sum(x < 0 for x in diffs)}
  r = seed_correlation(a_by_seed, b_by_seed)
  if len(common) >= 2 and (r is None or r > 0):
    d = mean_interval(diffs, level)
    sd = float(np.std(diffs, ddof=1))
    return {**d, 'paired': True, 'r': r, **won,
            'p': _p_value(d['mean'], sd / math.sqrt(len(diffs)), len(diffs) - 1)}
  a, b = (np.asarray(list(x.values()), float) for x in (a_by_seed, b_by_seed))
  if a.size == 0 or b.size == 0:
    raise ValueError('difference needs at least one value in each group')
  mean = float(a.mean() - b.mean())
  out = {'mean': mean, 'half_width': None, 'low': None, 'high': None,
         'n': int(min(a.size, b.size)), 'paired': False, 'r': r, 'p': None,
         **(won if len(common) >= 2 else {})}
  if a.size < 2 or b.size < 2:
    return out
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se = math.sqrt(va + vb)
  if se == 0:
    return {**out, 'half_width': 0.0, 'low': mean, 'high': mean, 'p': _p_value(mean, 0.0, 1)}
  dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  half = t_quantile(dof, level) * se
  return {**out, 'half_width': half, 'low': mean - half, 'high': mean + half,
          'p': _p_value(mean, se, dof)}


def _p_value(mean: float, se: float, dof: float) -> float:
  """Two-sided p-value of Student's t test that the difference is zero: below 0.05
  exactly when the 95% interval excludes zero."""
  if se == 0:
    return 0.0 if mean != 0 else 1.0
  return float(2 * scipy_stats.t.sf(abs(mean / se), dof))


def holm(p_values) -> list:
  """Holm's step-down adjustment of several p-values (None: no test, left out and kept None).

  With m tests sorted by p, the i-th smallest (from 1) is multiplied by m - i + 1, each
  adjusted value is at least the one before it, and none exceeds 1. Rejecting where the
  adjusted p is below 0.05 keeps the chance of any false finding among the m under 5%.
  """
  tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
  m, adjusted, running = len(tested), list(p_values), 0.0
  for rank, (p, i) in enumerate(tested):
    running = max(running, min(1.0, (m - rank) * p))
    adjusted[i] = running
  return adjusted


def verdict(d: dict, a: str, b: str, p_adjusted=None, budget: str = '') -> str:
  """A finding in words, only when the interval excludes zero and, where the question is
  one of several (`p_adjusted`: its Holm-adjusted p-value), the adjusted p is below 0.05.
  `budget` says what the finding is bounded by (width, epochs, images)."""
  at = f'at this budget ({budget})' if budget else 'at this budget'
  if d.get('low') is None:
    return 'no interval (fewer than two seeds)'
  if d['low'] <= 0 <= d['high']:
    return f'not resolved {at}: the interval contains zero'
  if p_adjusted is not None and p_adjusted >= 1 - LEVEL:
    return (f'not resolved once adjusted for the questions asked (Holm p = {p_adjusted:.2g}; '
            f'unadjusted, the interval excludes zero)')
  return f'{a if d["low"] > 0 else b} is ahead {at}'


def binomial_se(accuracy: float, n: int) -> float:
  """Standard error of an accuracy measured on n independent examples."""
  return math.sqrt(accuracy * (1 - accuracy) / n)


def last_fraction_spread(curve, fraction: float = 0.2) -> float | None:
  """How far validation accuracy moved over the last `fraction` of training: max - min.

  `curve`: [(epoch, accuracy)] in order. None when that stretch holds fewer than
  two evaluations (nothing to judge by).
  """
  if not curve:
    return None
  end = curve[-1][0]
  tail = [acc for epoch, acc in curve if epoch >= (1 - fraction) * end - 1e-9]
  return max(tail) - min(tail) if len(tail) >= 2 else None


def levelled_off(curve, fraction: float = 0.2, tolerance: float = 0.01) -> bool | None:
  """Whether validation accuracy stayed within `tolerance` over the last `fraction` of training.

  None when that stretch holds fewer than two evaluations (see `last_fraction_spread`).
  """
  spread = last_fraction_spread(curve, fraction)
  return None if spread is None else spread <= tolerance
