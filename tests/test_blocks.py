"""budget_blocks: consecutive row ranges under a budget, which the non-neural methods fit and
score by."""

import numpy as np

from sessionbench.blocks import budget_blocks


def test_the_ranges_cover_every_row_once_in_order_within_the_budget():
    cost = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    blocks = budget_blocks(cost, 7)
    assert blocks == [(0, 2), (2, 4), (4, 5), (5, 6), (6, 7), (7, 8)]
    assert all(cost[lo:hi].sum() <= 7 or hi - lo == 1 for lo, hi in blocks)


def test_a_row_over_the_budget_gets_a_range_of_its_own_and_max_rows_caps_a_range():
    assert budget_blocks(np.array([1, 20, 1]), 5) == [(0, 1), (1, 2), (2, 3)]
    assert budget_blocks(np.ones(5), 100, max_rows=2) == [(0, 2), (2, 4), (4, 5)]
    assert budget_blocks(np.zeros(0), 10) == []
