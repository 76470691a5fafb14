"""Item-KNN on a toy split worked out by hand (both ways of counting), pruning, bad input, and
the recommender contract."""

import numpy as np
import pytest

from baselines.itemknn import UNSEEN_SCORE, ItemKNN
from baselines.pop import Pop
from sessionbench.data import Sessions, Split, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy


def toy_split() -> Split:
    # item 0 is clicked twice in the first session; item 3 occurs only in test
    train = Sessions.from_lists([[0, 1, 0, 2], [1, 2], [0, 1]])
    test = Sessions.from_lists([[3, 0, 1]])
    return Split("toy", train, test, n_items=4, item_ids=np.arange(4))


def batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes))


def similarities(model: ItemKNN) -> np.ndarray:
    return model.similarities_.toarray()[:-1]  # drop the empty row used for unknown clicks


def test_events_counting_matches_the_reference_formula_by_hand():
    # supports = clicks: item 0 -> 3, item 1 -> 3, item 2 -> 2. cooc(i, j) = sum over sessions of
    # (clicks on i) x (j in session): cooc(0,1) = 2 + 1 = 3, cooc(1,0) = 1 + 1 = 2,
    # cooc(0,2) = 2, cooc(2,0) = 1, cooc(1,2) = cooc(2,1) = 2.
    knn = ItemKNN(lmbd=1.0, alpha=0.5, counting="events").fit(toy_split(), seed=0, progress=False)
    expected = np.array(
        [
            [0, 3 / 4, 2 / np.sqrt(4 * 3), 0],
            [2 / 4, 0, 2 / np.sqrt(4 * 3), 0],
            [1 / np.sqrt(3 * 4), 2 / np.sqrt(3 * 4), 0, 0],
            [0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(similarities(knn), expected, rtol=1e-6)


def test_sessions_counting_matches_the_papers_words_by_hand():
    # supports = sessions: item 0 -> 2, item 1 -> 3, item 2 -> 2; cooc = sessions with both:
    # (0,1) -> 2, (0,2) -> 1, (1,2) -> 2. alpha = 0.3 puts the exponent 0.3 on the row item.
    knn = ItemKNN(lmbd=1.0, alpha=0.3, counting="sessions").fit(toy_split(), seed=0, progress=False)
    s = lambda cooc, row, col: cooc / ((row + 1) ** 0.3 * (col + 1) ** 0.7)  # noqa: E731
    expected = np.array(
        [
            [0, s(2, 2, 3), s(1, 2, 2), 0],
            [s(2, 3, 2), 0, s(2, 3, 2), 0],
            [s(1, 2, 2), s(2, 2, 3), 0, 0],
            [0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(similarities(knn), expected, rtol=1e-6)


def _reference_loop(sessions: list[list[int]], n_items: int, lmbd: float, alpha: float) -> np.ndarray:
    """The GRU4Rec authors' CoOccurence.fit restated click by click (baselines.py, 5da3672f)."""
    support = np.bincount([i for s in sessions for i in s], minlength=n_items)
    sims = np.zeros((n_items, n_items))
    for i in range(n_items):
        row = np.zeros(n_items)
        for s in sessions:
            for click in s:
                if click == i:
                    row[s] += 1  # numpy's buffered fancy increment: +1 per distinct item
        row[i] = 0
        norm = (support[i] + lmbd) ** alpha * (support + lmbd) ** (1 - alpha)
        norm[norm == 0] = 1
        sims[i] = row / norm
    return sims


def test_events_counting_equals_the_reference_loop_on_random_sessions():
    rng = np.random.default_rng(3)
    sessions = [rng.integers(0, 12, size=rng.integers(2, 9)).tolist() for _ in range(40)]
    split = Split("random", Sessions.from_lists(sessions), Sessions.from_lists([[0, 1]]), 12, np.arange(12))
    knn = ItemKNN(n_neighbors=None, lmbd=2.0, alpha=0.4).fit(split, seed=0, progress=False)
    np.testing.assert_allclose(similarities(knn), _reference_loop(sessions, 12, 2.0, 0.4), rtol=1e-6)


def test_only_the_top_neighbours_are_kept():
    # events, lmbd 1: row 0 keeps 1 (3/4 > 2/sqrt 12), row 1 keeps 2, row 2 keeps 1
    knn = ItemKNN(n_neighbors=1, lmbd=1.0).fit(toy_split(), seed=0, progress=False)
    sims = similarities(knn)
    assert (sims > 0).sum(1).tolist() == [1, 1, 1, 0]
    assert sims.argmax(1)[:3].tolist() == [1, 2, 1]


def test_scores_are_similarities_to_the_last_click_and_unseen_items_score_lowest():
    knn = ItemKNN(lmbd=1.0).fit(toy_split(), seed=0, progress=False)
    sims = similarities(knn)
    scores = as_numpy(knn.score(batch([0], [1, 2, 0], [3], [2, 7])))
    np.testing.assert_allclose(scores[0, :3], sims[0, :3], rtol=1e-6)
    np.testing.assert_allclose(scores[1, :3], sims[0, :3], rtol=1e-6)  # only the last click counts
    np.testing.assert_array_equal(scores[2, :3], 0)  # last click unseen in training: no neighbours
    np.testing.assert_array_equal(scores[3, :3], 0)  # last click outside the item range: no error
    np.testing.assert_array_equal(scores[:, 3], UNSEEN_SCORE)
    assert UNSEEN_SCORE < 0


@pytest.mark.parametrize(
    "param, value",
    [("lmbd", -1.0), ("n_neighbors", 0), ("n_neighbors", 2.5), ("alpha", 1.5), ("counting", "clicks")],
)
def test_out_of_range_hyperparameters_are_refused(param, value):
    with pytest.raises(ValueError, match=param):
        ItemKNN(**{param: value})


def test_large_blocks_and_small_blocks_give_the_same_similarities(monkeypatch):
    import baselines.itemknn as module

    split = load_dataset("synthetic")
    whole = ItemKNN().fit(split, seed=0, progress=False).similarities_
    monkeypatch.setattr(module, "_BLOCK_ENTRIES", 5_000)  # forces many row blocks
    blocked = ItemKNN().fit(split, seed=0, progress=False).similarities_
    assert (whole != blocked).nnz == 0


@pytest.mark.parametrize("counting", ["events", "sessions"])
def test_beats_pop_on_the_small_synthetic_data(counting):
    split = load_dataset("synthetic")
    knn = evaluate(ItemKNN(counting=counting).fit(split, seed=0, progress=False), split.test, progress=False)
    pop = evaluate(Pop().fit(split, seed=0), split.test, progress=False)
    assert knn.metrics["recall@20"] > pop.metrics["recall@20"] + 0.1


class TestItemKNNContract(RecommenderContract):
    def make(self):
        return ItemKNN()


class TestItemKNNSessionsContract(RecommenderContract):
    def make(self):
        return ItemKNN(n_neighbors=5, counting="sessions")
