"""FPMC: the transition score by hand, the training pairs, learning "A is followed by B", bad
input, and the recommender contract."""

import numpy as np
import pytest
import torch

from baselines.fpmc import UNSEEN_SCORE, FPMC, _LazyAdam, _transitions
from baselines.pop import Pop
from sessionbench.data import Sessions, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy, oracle_split

A, B = 0, 1


def batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes), targets=[B] * len(prefixes))


def test_training_pairs_are_consecutive_clicks_within_sessions():
    last, nxt = _transitions(Sessions.from_lists([[0, 1, 2], [3, 4], [5, 5]]))
    assert list(zip(last.tolist(), nxt.tolist())) == [(0, 1), (1, 2), (3, 4), (5, 5)]


def test_score_is_the_factorised_transition_from_the_last_click():
    model = FPMC(embedding_size=2)
    model.item_factors_ = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0], [5.0, 5.0]])  # V_IL
    model.last_factors_ = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 1.0], [9.0, 9.0]])  # V_LI
    model.seen_ = np.array([True, True, True, False])
    scores = as_numpy(model.score(batch([0], [2, 1], [3], [1, 8])))
    np.testing.assert_allclose(scores[0, :3], [1, 2, 8])  # <V_IL[i], V_LI[0]>
    np.testing.assert_allclose(scores[1, :3], [-1, 0.5, -0.5])  # only the last click counts
    np.testing.assert_array_equal(scores[2, :3], 0)  # last click without training data
    np.testing.assert_array_equal(scores[3, :3], 0)  # last click outside the item range: no error
    assert (scores[:, 3] == UNSEEN_SCORE).all()


def test_learns_that_a_is_followed_by_b():
    split = oracle_split(n_items=100, n_train=1500)
    model = FPMC(embedding_size=16, epochs=5).fit(split, seed=0, progress=False)
    scores = as_numpy(model.score(batch([A], [7, A], [3, 9, A], [B, A])))
    ranks = 1 + (scores > scores[:, [B]]).sum(1) + (scores == scores[:, [B]]).sum(1) - 1
    assert (ranks <= 20).mean() == 1.0  # Recall@20 = 1 after A
    assert (ranks == 1).all()


def test_parameters_depend_on_items_and_factors_not_on_sessions():
    small, large = oracle_split(n_train=50), oracle_split(n_train=500)
    sizes = []
    for split in (small, large):
        model = FPMC(embedding_size=8, epochs=1).fit(split, seed=0, progress=False)
        sizes.append(model.item_factors_.numel() + model.last_factors_.numel())
    assert sizes == [2 * 30 * 8, 2 * 30 * 8]


def test_lazy_adam_matches_torch_sparse_adam():
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(6, 3, generator=gen)
    ours, theirs = start.clone(), torch.nn.Parameter(start.clone())
    adam, reference = _LazyAdam([ours], lr=0.1), torch.optim.SparseAdam([theirs], lr=0.1)
    for rows in ([0, 2, 2], [1, 2], [5, 0, 0, 0]):
        rows = torch.tensor(rows)
        grad = torch.randn(len(rows), 3, generator=gen)
        adam.step([(rows, grad)])
        theirs.grad = torch.sparse_coo_tensor(rows[None], grad, (6, 3), check_invariants=True)
        reference.step()
    torch.testing.assert_close(ours, theirs.detach())
    assert torch.equal(ours[[3, 4]], start[[3, 4]])  # rows never in a batch are untouched


@pytest.mark.parametrize(
    "param, value",
    [("embedding_size", 0), ("epochs", 0), ("batch_size", 0), ("learning_rate", -1.0), ("l2", -0.1), ("init_std", 0.0)],
)
def test_out_of_range_hyperparameters_are_refused(param, value):
    with pytest.raises(ValueError, match=param):
        FPMC(**{param: value})


def test_beats_pop_on_the_small_synthetic_data():
    split = load_dataset("synthetic")
    fpmc = evaluate(FPMC().fit(split, seed=0, progress=False), split.test, progress=False)
    pop = evaluate(Pop().fit(split, seed=0), split.test, progress=False)
    assert fpmc.metrics["recall@20"] > pop.metrics["recall@20"] + 0.1


class TestFPMCContract(RecommenderContract):
    def make(self):
        return FPMC(embedding_size=8, epochs=2)
