"""BPR-MF: the prefix score is the mean of dot products (plus bias), bad input, it learns, and
the recommender contract."""

import numpy as np
import pytest
import torch

from baselines.bprmf import UNSEEN_SCORE, BPRMF
from baselines.pop import Pop
from sessionbench.data import Sessions, Split, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy


def toy_split() -> Split:
    train = Sessions.from_lists([[0, 1, 2], [1, 2], [0, 2, 0], [2, 1]])
    test = Sessions.from_lists([[3, 0, 1]])  # item 3 occurs only in test
    return Split("toy", train, test, n_items=4, item_ids=np.arange(4))


def batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes))


def with_factors(factors: list[list[float]], bias: list[float], seen: list[bool]) -> BPRMF:
    model = BPRMF(embedding_size=len(factors[0]))
    model.item_factors_ = torch.tensor(factors, dtype=torch.float32)
    model.item_bias_ = torch.tensor(bias, dtype=torch.float32)
    model.seen_ = np.array(seen)
    return model


def test_prefix_score_is_the_mean_of_dot_products_plus_bias_for_fixed_factors():
    h = [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]]
    b = [0.5, -1.0, 0.0, UNSEEN_SCORE]
    model = with_factors(h, b, [True, True, True, False])
    scores = as_numpy(model.score(batch([0], [0, 1], [2, 2, 1])))
    # prefix [0, 1]: mean of <h_0, h_i> + b_i and <h_1, h_i> + b_i over i = 0, 1, 2
    np.testing.assert_allclose(scores[0, :3], [1 + 0.5, 0 - 1, 1 + 0])
    np.testing.assert_allclose(scores[1, :3], [(1 + 0) / 2 + 0.5, (0 + 4) / 2 - 1, (1 + 2) / 2 + 0])
    # prefix [2, 2, 1]: mean factors (2/3, 4/3); a repeated click counts twice
    np.testing.assert_allclose(scores[2, :3], [2 / 3 + 0.5, 8 / 3 - 1, 2 + 0], rtol=1e-6)
    assert (scores[:, 3] == UNSEEN_SCORE).all()


def test_fitted_scores_equal_the_formula_on_the_learned_factors():
    model = BPRMF(embedding_size=4, epochs=3).fit(toy_split(), seed=0, progress=False)
    h, b = model.item_factors_.numpy(), model.item_bias_.numpy()
    assert h.shape == (4, 4)  # implicit's extra bias column is split off
    prefix = [2, 0, 1]
    expected = np.mean([h[p] @ h[:3].T + b[:3] for p in prefix], axis=0)
    np.testing.assert_allclose(as_numpy(model.score(batch(prefix)))[0, :3], expected, rtol=1e-5, atol=1e-7)


def test_unseen_and_out_of_range_items_are_left_out_and_score_lowest():
    model = BPRMF(embedding_size=4, epochs=3).fit(toy_split(), seed=0, progress=False)
    scores = as_numpy(model.score(batch([0], [3, 0], [0, 9], [3])))
    np.testing.assert_array_equal(scores[1], scores[0])  # item 3 has no training clicks
    np.testing.assert_array_equal(scores[2], scores[0])  # item 9 is outside the item range
    np.testing.assert_allclose(scores[3, :3], model.item_bias_.numpy()[:3])  # no known click: biases
    assert (scores[:, 3] < scores[:, :3].min(1)).all()


@pytest.mark.parametrize(
    "param, value",
    [("embedding_size", 0), ("epochs", 0), ("n_threads", 0), ("learning_rate", 0.0), ("l2", -0.1), ("epochs", 1.5)],
)
def test_out_of_range_hyperparameters_are_refused(param, value):
    with pytest.raises(ValueError, match=param):
        BPRMF(**{param: value})


def test_a_diverging_learning_rate_is_reported_with_a_fix():
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        BPRMF(learning_rate=50.0, epochs=3).fit(load_dataset("synthetic"), seed=0, progress=False)


def test_beats_pop_on_the_small_synthetic_data():
    split = load_dataset("synthetic")
    bpr = evaluate(BPRMF().fit(split, seed=0, progress=False), split.test, progress=False)
    pop = evaluate(Pop().fit(split, seed=0), split.test, progress=False)
    assert bpr.metrics["recall@20"] > pop.metrics["recall@20"] + 0.05


class TestBPRMFContract(RecommenderContract):
    def make(self):
        return BPRMF(embedding_size=8, epochs=5)
