"""POP and S-POP on a toy split worked out by hand, plus the recommender contract."""

import numpy as np
import pytest

from baselines.pop import Pop
from baselines.spop import SPop
from sessionbench.data import Sessions, Split
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy


def toy_split() -> Split:
    # training clicks per item: 0 -> 1, 1 -> 4, 2 -> 2, 3 -> 0 (item 3 only in test)
    train = Sessions.from_lists([[1, 2], [1, 0, 1], [2, 1]])
    test = Sessions.from_lists([[3, 0, 0]])
    return Split("toy", train, test, n_items=4, item_ids=np.arange(4))


def batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes))


def test_pop_scores_are_training_click_counts():
    scores = as_numpy(Pop().fit(toy_split(), seed=0).score(batch([0], [3, 2])))
    np.testing.assert_array_equal(scores, [[1, 4, 2, 0], [1, 4, 2, 0]])


def test_spop_scores_session_counts_plus_popularity_tiebreak():
    # counts [1, 4, 2, 0] have dense ranks [1, 3, 2, 0] of 4 distinct: tie-breaker (rank + 1) / 5
    scores = as_numpy(SPop().fit(toy_split(), seed=0).score(batch([3, 0, 3], [2])))
    np.testing.assert_allclose(scores[0], [1 + 2 / 5, 4 / 5, 3 / 5, 2 + 1 / 5], rtol=1e-6)
    np.testing.assert_allclose(scores[1], [2 / 5, 4 / 5, 1 + 3 / 5, 1 / 5], rtol=1e-6)


def test_spop_keeps_popularity_order_inside_long_sessions():
    # 300 distinct counts and 100 clicks on each of two items: 1 is more popular than 0
    lists = [[i] * (i + 1) + [i] for i in range(300)]
    split = Split("many", Sessions.from_lists(lists), Sessions.from_lists([[0, 1]]), 300, np.arange(300))
    rec = SPop().fit(split, seed=0)
    scores = rec.score(batch([0] * 100 + [1] * 100))
    assert scores.dtype == np.float32 and scores[0, 1] > scores[0, 0] > scores[0, 299]
    rec.step_ = 1e-7  # steps float32 cannot resolve at 200: the scores switch to float64
    assert rec.score(batch([0] * 100 + [1] * 100)).dtype == np.float64


def test_spop_session_items_outrank_every_other_item():
    scores = as_numpy(SPop().fit(toy_split(), seed=0).score(batch([3])))
    assert scores[0, 3] > scores[0, [0, 1, 2]].max()


@pytest.mark.parametrize("cls", [Pop, SPop])
def test_pop_counts_only_the_training_data_used(cls):
    split = toy_split()
    split.full_train = Sessions.from_lists([[3, 3, 3, 3]])  # older data that the fraction dropped
    scores = as_numpy(cls().fit(split, seed=0).score(batch([2])))
    assert scores[0, 3] < scores[0, 0]


class TestPopContract(RecommenderContract):
    def make(self):
        return Pop()


class TestSPopContract(RecommenderContract):
    def make(self):
        return SPop()
