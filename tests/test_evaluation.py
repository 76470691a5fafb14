"""Rank and metric arithmetic on crafted score matrices with ties, in all three tie modes."""

import numpy as np
import pytest
import torch

from sessionbench.data import Sessions
from sessionbench.evaluation import ScoreError, evaluate, hits_by_length, metrics, rank_of_targets
from sessionbench.recommender import PrefixBatch, Recommender

SCORES = np.array(
    [
        [0.5, 0.9, 0.5, 0.1, 0.5],  # target 0: one item above, two tied
        [0.2, 0.2, 0.2, 0.2, 0.2],  # target 3: everything tied
        [0.0, 1.0, 0.3, 0.3, 0.2],  # target 1: alone at the top
    ],
    dtype=np.float32,
)
TARGETS = np.array([0, 3, 1])


@pytest.mark.parametrize(
    "ties, expected",
    [("conservative", [4, 5, 1]), ("standard", [2, 1, 1]), ("median", [3, 3, 1])],
)
def test_ranks_under_each_tie_mode(ties, expected):
    np.testing.assert_array_equal(rank_of_targets(SCORES, TARGETS, ties), expected)
    np.testing.assert_array_equal(rank_of_targets(torch.from_numpy(SCORES), torch.from_numpy(TARGETS), ties), expected)


def test_unknown_tie_mode():
    with pytest.raises(ValueError, match="ties must be one of conservative, standard, median"):
        rank_of_targets(SCORES, TARGETS, "optimistic")


def test_recall_and_mrr_follow_their_definitions():
    ranks = np.array([1, 3, 25, 20, 5.5])
    m = metrics(ranks, ks=(5, 20))
    assert m["recall@5"] == pytest.approx(2 / 5) and m["recall@20"] == pytest.approx(4 / 5)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 3) / 5)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 3 + 1 / 20 + 1 / 5.5) / 5)


def test_hits_per_prefix_length_bucket_20_and_longer():
    per = hits_by_length(np.array([1, 30, 2, 21, 20]), np.array([1, 1, 19, 20, 33]))
    assert per["1"] == {"cases": 2, "hits": 1}
    assert per["19"] == {"cases": 1, "hits": 1}
    assert per["20+"] == {"cases": 2, "hits": 1}
    assert per["2"] == {"cases": 0, "hits": 0} and len(per) == 20


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_name_the_recommender(bad):
    scores = SCORES.copy()
    scores[1, 2] = bad
    with pytest.raises(ScoreError, match=r"mymodel: score\[1, 2\] is (nan|inf); scores must be finite"):
        rank_of_targets(scores, TARGETS, name="mymodel")


def test_integer_scores_are_refused():
    with pytest.raises(ScoreError, match="must be floating point"):
        rank_of_targets(SCORES.astype(np.int64), TARGETS, name="m")


class FixedScores(Recommender):
    """Scores each case from a table indexed by (last item, prefix length)."""

    name = "fixed"

    def __init__(self, n_items: int = 6, width: int | None = None, as_torch: bool = False):
        self.n_items, self.width, self.as_torch = n_items, width, as_torch

    def fit(self, split, *, seed=0, device="cpu", progress=True):
        return self

    def table(self, batch: PrefixBatch) -> np.ndarray:
        rng = np.random.default_rng(batch.last_items * 100 + batch.lengths)
        return np.round(rng.random((len(batch), self.n_items)), 1).astype(np.float32)  # many ties

    def score(self, batch):
        scores = np.stack([self.table(PrefixBatch(batch.items[i : i + 1], batch.lengths[i : i + 1]))[0] for i in range(len(batch))])
        scores = scores[:, : self.width] if self.width else scores
        return torch.from_numpy(scores) if self.as_torch else scores


def test_evaluate_streams_batches_and_matches_ranking_everything_at_once():
    sessions = Sessions.from_lists([[0, 1, 2, 3, 4], [5, 4], [2, 2, 2], [1, 0, 3]])
    rec = FixedScores()
    all_cases = next(sessions.prefix_batches(batch_size=100))
    expected = rank_of_targets(rec.score(all_cases), all_cases.targets)
    for as_torch in (False, True):
        result = evaluate(FixedScores(as_torch=as_torch), sessions, n_items=6, batch_size=3, progress=False)
        np.testing.assert_array_equal(result.ranks(), expected)
        assert result.metrics["recall@5"] == pytest.approx(np.mean(expected <= 5))
        assert sum(v["cases"] for v in result.per_length.values()) == sessions.n_prefixes == 9
        assert result.per_length["1"]["cases"] == 4
        np.testing.assert_array_equal(result.ranks("standard"), 1 + result.greater)


def test_evaluate_refuses_scores_of_the_wrong_width_naming_the_model():
    sessions = Sessions.from_lists([[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ScoreError, match=r"fixed: score\(\) must return float\[2, 6\].*got shape \(2, 4\)"):
        evaluate(FixedScores(width=4), sessions, n_items=6, progress=False)
