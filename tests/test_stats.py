"""nin.experiments.stats against values worked out by hand (t quantiles from tables)."""

import pytest

from nin.experiments import stats


def test_t_quantiles_match_the_tables():
  # Two-sided 95%: 12.706 (1 dof), 4.303 (2), 2.776 (4), 1.960 in the limit.
  for dof, table in ((1, 12.706), (2, 4.303), (4, 2.776), (10 ** 6, 1.960)):
    assert stats.t_quantile(dof) == pytest.approx(table, abs=5e-4)


def test_mean_interval():
  d = stats.mean_interval([0.5, 0.6, 0.7])
  # mean 0.6, std 0.1, half-width 4.3027 * 0.1 / sqrt(3).
  assert d['mean'] == pytest.approx(0.6) and d['n'] == 3
  assert d['half_width'] == pytest.approx(0.248414, abs=1e-6)
  assert (d['low'], d['high']) == pytest.approx((0.6 - 0.248414, 0.6 + 0.248414), abs=1e-6)
  one = stats.mean_interval([0.7])
  assert one['mean'] == 0.7 and one['half_width'] is None and one['low'] is None
  with pytest.raises(ValueError):
    stats.mean_interval([])


def test_paired_difference_uses_the_per_seed_differences():
  a = {0: 0.60, 1: 0.70, 2: 0.65, 7: 0.99}  # Seed 7 has no partner: left out of the pairs.
  b = {0: 0.55, 1: 0.66, 2: 0.60}
  d = stats.difference(a, b)
  # Differences 0.05, 0.04, 0.05: mean 0.046667, std 0.0057735, half 4.3027 * std / sqrt(3).
  assert d['paired'] and d['n'] == 3
  assert d['mean'] == pytest.approx(0.046667, abs=1e-6)
  assert d['half_width'] == pytest.approx(0.014342, abs=1e-6)
  # Unpaired, the seed-to-seed spread (0.05 between seeds) would swamp the same difference.
  welch = stats.difference({10 + k: v for k, v in a.items() if k != 7}, b)
  assert not welch['paired'] and welch['low'] < 0 < welch['high']


def test_seeds_pair_only_where_they_move_both_groups_together():
  from scipy import stats as scipy_stats
  a = {0: 0.60, 1: 0.70, 2: 0.65, 3: 0.62}
  apart = {0: 0.66, 1: 0.55, 2: 0.60, 3: 0.63}    # Falls where A rises: r < 0.
  together = {0: 0.55, 1: 0.66, 2: 0.61, 3: 0.57}  # Rises with A: r > 0.
  d = stats.difference(a, apart)
  assert not d['paired'] and d['r'] == pytest.approx(
      scipy_stats.pearsonr(list(a.values()), list(apart.values()))[0]) and d['r'] < 0
  assert d['p'] == pytest.approx(scipy_stats.ttest_ind(
      list(a.values()), list(apart.values()), equal_var=False).pvalue)
  assert (d['a_won'], d['pairs']) == (2, 4)
  d = stats.difference(a, together)
  assert d['paired'] and d['r'] > 0 and d['p'] == pytest.approx(scipy_stats.ttest_rel(
      list(a.values()), list(together.values())).pvalue)
  # Two common seeds always correlate perfectly: too few to judge, so they pair.
  two = stats.difference({0: 0.6, 1: 0.7}, {0: 0.7, 1: 0.6})
  assert two['paired'] and two['r'] is None
  assert stats.seed_correlation({0: 1, 1: 1, 2: 1}, {0: 1, 1: 2, 2: 3}) is None  # A constant.


def test_welch_difference_when_seeds_do_not_pair():
  d = stats.difference({0: 1.0, 1: 2.0, 2: 3.0}, {10: 2.0, 11: 4.0, 12: 6.0, 13: 8.0})
  # Variances of the means 1/3 and (20/3)/4; Welch-Satterthwaite dof 4.0755, t 2.7563;
  # half-width 2.7563 * sqrt(2) = 3.8980.
  assert not d['paired'] and d['mean'] == pytest.approx(-3.0)
  assert d['half_width'] == pytest.approx(3.897975, abs=1e-5)
  single = stats.difference({0: 0.5}, {1: 0.4, 2: 0.45})
  assert single['mean'] == pytest.approx(0.075) and single['low'] is None


def test_verdict_names_a_side_only_when_the_interval_excludes_zero():
  assert stats.verdict({'low': 0.001, 'high': 0.02}, 'nin', 'plain') == \
      'nin is ahead at this budget'
  assert stats.verdict({'low': -0.03, 'high': -0.01}, 'nin', 'plain',
                       budget='nin at 1/8 width') == 'plain is ahead at this budget (nin at 1/8 width)'
  assert stats.verdict({'low': -0.01, 'high': 0.02}, 'nin', 'plain').startswith('not resolved')
  assert stats.verdict({'low': 0.0, 'high': 0.02}, 'nin', 'plain').startswith('not resolved')
  assert stats.verdict({'low': None, 'high': None}, 'nin', 'plain').startswith('no interval')


def test_binomial_standard_error():
  # 57% on 10,000 test images: sqrt(0.57 * 0.43 / 10000) = 0.49508 points.
  assert stats.binomial_se(0.57, 10000) == pytest.approx(0.0049508, abs=1e-7)
  assert stats.binomial_se(1.0, 100) == 0.0


def test_levelled_off_reads_the_last_fifth_of_training():
  rising = [(e, 0.1 * e) for e in (1, 2, 3, 4, 5)]
  flat = [(1, 0.3), (2, 0.5), (3, 0.6), (4, 0.695), (4.5, 0.70), (5, 0.701)]
  assert stats.levelled_off(rising) is False   # 0.4 -> 0.5 over epochs 4-5.
  assert stats.levelled_off(flat) is True      # 69.5% -> 70.1%: within a point.
  assert stats.levelled_off([(1, 0.3), (5, 0.5)]) is None  # One evaluation in the last fifth.
  assert stats.levelled_off([]) is None
  assert stats.last_fraction_spread(rising) == pytest.approx(0.1)  # By how much it did not.
  assert stats.last_fraction_spread(flat) == pytest.approx(0.006)
  assert stats.last_fraction_spread([(1, 0.3), (5, 0.5)]) is None


def test_holm_adjustment_against_values_worked_by_hand():
  # Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to
  # the 0.06 before it (adjusted values never fall); None is no test and counts for nothing.
  assert stats.holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx(
      [0.03, 0.06, 0.06, None, 0.02])
  assert stats.holm([0.2, 0.01]) == pytest.approx([0.2, 0.02])
  assert stats.holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # Capped at 1.
  assert stats.holm([0.03]) == pytest.approx([0.03])        # One test: nothing to adjust.
  assert stats.holm([]) == []


def test_p_values_are_students_and_welchs_and_seeds_won_are_counted():
  from scipy import stats as scipy_stats
  a = {0: 0.60, 1: 0.70, 2: 0.65, 3: 0.61}
  b = {0: 0.55, 1: 0.66, 2: 0.66, 3: 0.58}
  d = stats.difference(a, b)
  expected = scipy_stats.ttest_rel(list(a.values()), list(b.values())).pvalue
  assert d['p'] == pytest.approx(expected) and (d['a_won'], d['b_won']) == (3, 1)
  # p < 0.05 exactly when the 95% interval excludes zero.
  assert (d['p'] < 0.05) == (d['low'] > 0 or d['high'] < 0)
  x, y = {0: 1.0, 1: 2.0, 2: 3.0}, {10: 2.0, 11: 4.0, 12: 6.0, 13: 8.0}
  welch = stats.difference(x, y)
  assert welch['p'] == pytest.approx(scipy_stats.ttest_ind(
      list(x.values()), list(y.values()), equal_var=False).pvalue)


def test_a_finding_that_does_not_survive_the_adjustment_is_not_a_verdict():
  d = {'low': 0.001, 'high': 0.02}  # The interval alone excludes zero (unadjusted p < 0.05).
  assert stats.verdict(d, 'a', 'b', p_adjusted=0.04) == 'a is ahead at this budget'
  assert stats.verdict(d, 'a', 'b', p_adjusted=0.06).startswith(
      'not resolved once adjusted for the questions asked (Holm p = 0.06')
