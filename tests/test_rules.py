"""SR and AR on a toy split worked out by hand, against session-rec's loops restated, pruning
and its ties, unknown last clicks, bad hyperparameters, and the recommender contract."""

from collections import Counter
from fractions import Fraction
from math import log10

import numpy as np
import pytest

import baselines.sr as sr_module
from baselines.ar import AR
from baselines.sr import SR, UNSEEN_SCORE
from sessionbench.data import Sessions, Split, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy


def toy_split() -> Split:
    # item 1 is clicked twice in the first session; item 3 occurs only in test
    train = Sessions.from_lists([[0, 1, 2, 1], [1, 2], [2, 0]])
    test = Sessions.from_lists([[3, 0, 1]])
    return Split("toy", train, test, n_items=4, item_ids=np.arange(4))


def rules(model) -> np.ndarray:
    return model.rules_.toarray()[:-1]  # drop the empty row used for unknown clicks


def batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes))


def test_sr_rule_weights_by_hand():
    # steps 3, w(g) = 1/g. Session [0, 1, 2, 1]: gap 1: 0->1, 1->2, 2->1 (1 each); gap 2: 0->2,
    # 1->1 (1/2 each); gap 3: 0->1 (1/3). Session [1, 2]: 1->2 (1). Session [2, 0]: 2->0 (1).
    sr = SR(steps=3, weighting="div", pruning=0).fit(toy_split(), seed=0, progress=False)
    expected = np.array(
        [
            [0, 1 + 1 / 3, 1 / 2, 0],
            [0, 1 / 2, 1 + 1, 0],
            [1, 1, 0, 0],
            [0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(rules(sr), expected, rtol=1e-6)


def test_sr_steps_limit_the_gap():
    # steps 1: only neighbours count; 0->2, 1->1 (gap 2) and the gap-3 part of 0->1 drop out
    sr = SR(steps=1, pruning=0).fit(toy_split(), seed=0, progress=False)
    np.testing.assert_allclose(rules(sr), [[0, 1, 0, 0], [0, 0, 2, 0], [1, 1, 0, 0], [0, 0, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize(
    "weighting, w",
    [
        ("same", lambda g: 1.0),
        ("linear", lambda g: 1 - 0.1 * g),
        ("quadratic", lambda g: 1 / g**2),
        ("log", lambda g: 1 / log10(g + 1.7)),
    ],
)
def test_sr_weightings_follow_session_rec(weighting, w):
    # the same occurrences as by hand above: 0->1 at gaps 1 and 3, 0->2 and 1->1 at gap 2,
    # 1->2 twice at gap 1
    sr = SR(steps=3, weighting=weighting, pruning=0).fit(toy_split(), seed=0, progress=False)
    got = rules(sr)
    np.testing.assert_allclose(
        [got[0, 1], got[0, 2], got[1, 1], got[1, 2]], [w(1) + w(3), w(2), w(2), 2 * w(1)], rtol=1e-6
    )


def test_sr_linear_weights_turn_negative_beyond_ten_clicks():
    # session-rec's linear weight 1 - 0.1 g is 0 at g = 10 and negative after (up to g = 100)
    split = Split("long", Sessions.from_lists([list(range(12))]), Sessions.from_lists([[0, 1]]), 12, np.arange(12))
    got = rules(SR(steps=11, weighting="linear", pruning=0).fit(split, seed=0, progress=False))
    np.testing.assert_allclose([got[0, 1], got[0, 10], got[0, 11]], [0.9, 0.0, -0.1], atol=1e-6)


def test_ar_counts_by_hand():
    # every ordered pair of distinct positions. Session [0, 1, 2, 1] (item 1 twice): 0->1 and
    # 1->0: 1 x 2 = 2; 0->2, 2->0: 1; 1->2, 2->1: 2; 1->1: 2 (positions 1, 3 in both orders).
    # Session [1, 2]: 1->2, 2->1: +1. Session [2, 0]: 2->0, 0->2: +1.
    ar = AR(pruning=0).fit(toy_split(), seed=0, progress=False)
    expected = np.array([[0, 2, 2, 0], [2, 2, 3, 0], [2, 3, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(rules(ar), expected)


#: SequentialRules.same / div / linear (sr.py, 5dcd583c), in exact arithmetic: the reference's
#: float64 sums order rules of mathematically equal weight by rounding (a documented deviation)
_SESSION_REC_WEIGHTS = {
    "same": lambda i: 1,
    "div": lambda i: Fraction(1, i),
    "linear": lambda i: 1 - Fraction(i, 10) if i <= 100 else 0,
}


def _session_rec_sr(sessions, steps, weight, pruning):
    """session-rec's SequentialRules.fit and prune restated (sr.py, 5dcd583c)."""
    table: dict[int, dict[int, float]] = {}
    for session in sessions:
        for q, item in enumerate(session):
            for gap in range(1, min(steps, q) + 1):
                row = table.setdefault(session[q - gap], {})
                row[item] = row.get(item, 0) + weight(gap)
    return _session_rec_prune(table, pruning)


def _session_rec_ar(sessions, pruning):
    """session-rec's AssociationRules.fit and prune restated (ar.py, 5dcd583c)."""
    table: dict[int, dict[int, float]] = {}
    for session in sessions:
        for q, item in enumerate(session):
            for earlier in session[:q]:
                table.setdefault(item, {})
                table.setdefault(earlier, {})
                table[earlier].setdefault(item, 0)
                table[item].setdefault(earlier, 0)
                table[item][earlier] += 1
                table[earlier][item] += 1
    return _session_rec_prune(table, pruning)


def _session_rec_prune(table, pruning):
    if pruning > 0:
        for a, row in table.items():
            keep = len(row) - int(len(row) * pruning) if pruning < 1 else pruning
            table[a] = dict(Counter(row).most_common(keep))
    return table


def _as_matrix(table, n_items):
    out = np.zeros((n_items, n_items))
    for a, row in table.items():
        for b, value in row.items():
            out[a, b] = float(value)
    return out


def _random_split(seed: int, n_items: int = 15) -> Split:
    rng = np.random.default_rng(seed)
    sessions = [rng.integers(0, n_items, size=rng.integers(2, 12)).tolist() for _ in range(60)]
    return Split("random", Sessions.from_lists(sessions), Sessions.from_lists([[0, 1]]), n_items, np.arange(n_items))


@pytest.mark.parametrize("pruning", [0, 3, 0.5])
@pytest.mark.parametrize("weighting", ["same", "div", "linear"])
def test_sr_equals_session_rec_loop_with_its_ties(weighting, pruning):
    # "same" makes many ties at the pruning cut: the rules kept must be the reference's
    split = _random_split(1)
    weight = _SESSION_REC_WEIGHTS[weighting]
    expected = _as_matrix(_session_rec_sr(split.train.to_lists(), 4, weight, pruning), split.n_items)
    sr = SR(steps=4, weighting=weighting, pruning=pruning).fit(split, seed=0, progress=False)
    np.testing.assert_allclose(rules(sr), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pruning", [0, 2, 5, 0.3])
def test_ar_equals_session_rec_loop_with_its_ties(pruning):
    split = _random_split(2)
    expected = _as_matrix(_session_rec_ar(split.train.to_lists(), pruning), split.n_items)
    ar = AR(pruning=pruning).fit(split, seed=0, progress=False)
    np.testing.assert_array_equal(rules(ar), expected)


def test_pruning_keeps_the_heaviest_rules():
    # SR by hand above: row 0 = {1: 4/3, 2: 1/2}, row 1 = {1: 1/2, 2: 2}, row 2 = {0: 1, 1: 1}
    got = rules(SR(steps=3, pruning=1).fit(toy_split(), seed=0, progress=False))
    assert (got != 0).sum(1).tolist() == [1, 1, 1, 0]
    assert got[0, 1] == pytest.approx(4 / 3) and got[1, 2] == pytest.approx(2)
    # the tie in row 2 goes to 2->1, created first (session 1) before 2->0 (session 3)
    assert got[2, 1] == 1 and got[2, 0] == 0
    # a fraction drops floor(n x pruning) rules: 2 rules x 0.5 -> keep 1
    np.testing.assert_array_equal(rules(SR(steps=3, pruning=0.5).fit(toy_split(), seed=0, progress=False)), got)


def test_ties_go_to_the_first_rule_in_session_id_order():
    # 0->2 (first session by id) and 0->1 tie at 1; pruning 1 keeps the one met first, whatever
    # its item index and wherever the session sits in time
    train = Sessions.from_lists([[0, 1], [0, 2]], ids=[7, 3])  # session id 3 is read first
    split = Split("ties", train, Sessions.from_lists([[0, 1]]), 3, np.arange(3))
    for model in (SR(pruning=1), AR(pruning=1)):
        got = rules(model.fit(split, seed=0, progress=False))
        assert got[0].tolist() == [0, 0, 1], type(model).__name__


@pytest.mark.parametrize("make", [lambda: SR(steps=3), lambda: AR()], ids=["sr", "ar"])
def test_scores_are_the_rules_of_the_last_click(make):
    model = make().fit(toy_split(), seed=0, progress=False)
    got = rules(model)
    scores = as_numpy(model.score(batch([0], [2, 1, 0], [3], [2, 9], [-5])))
    assert model.score(batch([0])).dtype == np.float32
    np.testing.assert_allclose(scores[0, :3], got[0, :3], rtol=1e-6)
    np.testing.assert_allclose(scores[1, :3], got[0, :3], rtol=1e-6)  # only the last click counts
    np.testing.assert_array_equal(scores[2:, :3], 0)  # no rules / outside the item range: zeros
    np.testing.assert_array_equal(scores[:, 3], UNSEEN_SCORE)  # no training clicks: lowest


@pytest.mark.parametrize("make", [lambda: SR(steps=3), lambda: AR()], ids=["sr", "ar"])
def test_batch_scores_equal_one_prefix_at_a_time(make):
    split = _random_split(4)
    model = make().fit(split, seed=0, progress=False)
    prefixes = [[0], [3, 4], [5, 1, 14], [14], [2, 2]]
    together = as_numpy(model.score(batch(*prefixes)))
    for row, prefix in enumerate(prefixes):
        np.testing.assert_array_equal(as_numpy(model.score(batch(prefix)))[0], together[row])


@pytest.mark.parametrize("make", [lambda: SR(steps=3), lambda: AR()], ids=["sr", "ar"])
def test_a_last_click_without_rules_is_ranked_by_evaluate(make):
    # test session [3, 0, 1]: after [3] (no rules) items 0, 1, 2 tie at 0, so target 0 is
    # third (conservative), first (standard), second (median); after [3, 0] the rules of 0
    split = toy_split()
    model = make().fit(split.training_view(), seed=0, progress=False)
    result = evaluate(model, split.test, n_items=split.n_items, progress=False)
    assert result.ranks("conservative")[0] == 3 and result.ranks("standard")[0] == 1 and result.ranks("median")[0] == 2
    assert result.ranks("standard")[1] == 1  # 0 -> 1 is item 0's heaviest rule (AR: tied with 0 -> 2)


@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: SR(steps=0), "steps"),
        (lambda: SR(steps=2.5), "steps"),
        (lambda: SR(weighting="inverse"), "weighting"),
        (lambda: SR(pruning=-1), "pruning"),
        (lambda: SR(pruning=1.5), "pruning"),
        (lambda: AR(pruning=20.0), "pruning"),
        (lambda: AR(pruning=True), "pruning"),
    ],
)
def test_out_of_range_hyperparameters_are_refused(make, param):
    with pytest.raises(ValueError, match=param):
        make()


@pytest.mark.parametrize("make", [lambda: SR(), lambda: AR(), lambda: AR(pruning=0.2)], ids=["sr", "ar", "ar-fraction"])
def test_large_blocks_and_small_blocks_give_the_same_rules(make, monkeypatch):
    split = load_dataset("synthetic")
    whole = make().fit(split, seed=0, progress=False).rules_
    monkeypatch.setattr(sr_module, "_BLOCK_PAIRS", 2_000)  # forces many item blocks
    blocked = make().fit(split, seed=0, progress=False).rules_
    assert (whole != blocked).nnz == 0


def test_search_spaces_hold_valid_settings():
    for cls in (SR, AR):
        for name, space in cls.search_space.items():
            for option in space.options:
                assert cls(**{name: option}).get_params()[name] == option


class TestSRContract(RecommenderContract):
    def make(self):
        return SR()


class TestSRLinearContract(RecommenderContract):
    def make(self):
        return SR(steps=3, weighting="linear", pruning=5)


class TestARContract(RecommenderContract):
    def make(self):
        return AR()
