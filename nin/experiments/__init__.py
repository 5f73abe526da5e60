"""Experiments read from finished runs: the questions a sweep asks, their statistics
(95% intervals, Holm), reports and plots, the ladder of budgets, and publishing runs."""
