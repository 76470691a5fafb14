"""The session-kNN methods (S-KNN, V-SKNN, STAN, VSTAN) on a toy split worked out by hand, the
recent sample, prefixes that match nothing, bad hyperparameters, chunking, and the recommender
contract. tests/test_knn_reference.py checks them against session-rec's loops restated."""

import math

import numpy as np
import pytest

from baselines.knn import SKNN, STAN, VSKNN, VSTAN, neighbors
from baselines.knn.vsknn import position_weight
from sessionbench.data import Sessions, Split, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import NotFittedError, PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy

DAY = 86400.0
E = math.e


def toy_split(times=None) -> Split:
    # s0..s3 in time order; item 2 is clicked twice in s2; item 5 has no training session
    train = Sessions.from_lists([[0, 1, 2], [1, 3], [2, 3, 4, 2], [0, 4]], times=times)
    test = Sessions.from_lists([[5, 0, 1]])
    return Split("toy", train, test, n_items=6, item_ids=np.arange(6))


def scores(model, *prefixes, split=None) -> np.ndarray:
    model.fit(toy_split() if split is None else split, seed=0, progress=False)
    return as_numpy(model.score(PrefixBatch.from_lists(list(prefixes))))


# ---------------------------------------------------------------------------- S-KNN


def test_sknn_jaccard_by_hand():
    # prefix {0, 1}; candidates s0 {0,1,2}, s1 {1,3}, s3 {0,4} (s2 shares nothing)
    # jaccard: s0 2/3, s1 1/3, s3 1/3; k = 2 keeps s0 and, of the tie, the more recent s3
    got = scores(SKNN(n_neighbors=2, sample_size=3), [0, 1])
    s0, s3 = 2 / 3, 1 / 3
    np.testing.assert_allclose(got[0], [s0 + s3, s0, s0, 0, s3, 0], rtol=1e-6)


def test_sknn_cosine_by_hand():
    # cosine |A & n| / sqrt(|A| |n|): s0 2 / sqrt(2 * 3), s1 1 / sqrt(2 * 2), s3 1 / sqrt(2 * 2)
    got = scores(SKNN(n_neighbors=2, sample_size=3, similarity="cosine"), [0, 1])
    s0, s3 = 2 / math.sqrt(6), 1 / 2
    np.testing.assert_allclose(got[0], [s0 + s3, s0, s0, 0, s3, 0], rtol=1e-6)


def test_sknn_counts_repeated_and_unknown_clicks_once_in_the_item_set():
    # prefix [2, 5, 2, 99]: A = {2, 5, 99}, |A| = 3; only item 2 matches: s0 and s2, both 1 / (3 + 3 - 1)
    got = scores(SKNN(), [2, 5, 2, 99])
    np.testing.assert_allclose(got[0], [1 / 5, 1 / 5, 2 / 5, 1 / 5, 1 / 5, 0], rtol=1e-6)


# ---------------------------------------------------------------------------- V-SKNN


def test_vsknn_by_hand():
    # prefix [2, 0, 2], L = 3: last clicks 0 at 2, 2 at 3; div weights w0 = 2/3, w2 = 1
    # vec sim = sum of shared weights / |A| (2): s0 (2/3 + 1) / 2 = 5/6, s2 1/2, s3 (2/3) / 2 = 1/3
    # step (1 = last click matches): s0 1, s2 1, s3 3 - 2 + 1 = 2; div score 1/step
    got = scores(VSKNN(), [2, 0, 2])
    s0, s2, s3 = 5 / 6, 1 / 2, 1 / 3 / 2
    np.testing.assert_allclose(got[0], [s0 + s3, s0, s0 + s2, s2, s2 + s3, 0], rtol=1e-6)


def test_vsknn_idf_counts_clicks_as_session_rec_does():
    # idf = ln(4 sessions / clicks): items 0, 1, 3, 4 have 2 clicks, item 2 has 3 (twice in s2)
    plain = scores(VSKNN(), [2, 0, 2])[0]
    boosted = scores(VSKNN(idf_weighting=2.0), [2, 0, 2])[0]
    idf = np.log(4 / np.array([2, 2, 3, 2, 2]))
    np.testing.assert_allclose(boosted[:5], plain[:5] * (1 + 2.0 * idf), rtol=1e-6)


def test_vsknn_cosine_and_quadratic_by_hand():
    # quadratic weights (p / L)^2: w0 = 4/9, w2 = 1; norm = sqrt(16/81 + 1)
    # cosine: s0 (4/9 + 1) / (norm sqrt 3), s2 1 / (norm sqrt 3), s3 (4/9) / (norm sqrt 2)
    # quadratic score 1 / step^2: s3's step is 2
    got = scores(VSKNN(similarity="cosine", weighting="quadratic", weighting_score="quadratic"), [2, 0, 2])
    norm = math.sqrt(16 / 81 + 1)
    s0, s2, s3 = (13 / 9) / (norm * math.sqrt(3)), 1 / (norm * math.sqrt(3)), (4 / 9) / (norm * math.sqrt(2)) / 4
    np.testing.assert_allclose(got[0], [s0 + s3, s0, s0 + s2, s2, s2 + s3, 0], rtol=1e-6)


def test_vsknn_linear_weighting_as_the_reference_writes_it():
    # linear: 1 - 0.1 (L - p) for p <= 10, else 0; a 12-click prefix ending in 11 clicks on item 5
    # gives item 0 (p = 1) the weight 1 - 1.1 < 0: every candidate's similarity is negative,
    # none is kept, and the row is all 0
    got = scores(VSKNN(weighting="linear"), [0] + [5] * 11)
    np.testing.assert_array_equal(got[0], 0)
    weights = position_weight("linear", np.array([1, 2, 10, 11]), np.full(4, 12))
    np.testing.assert_allclose(weights, [1 - 1.1, 1 - 1.0, 1 - 0.2, 0.0], rtol=1e-12)


# ---------------------------------------------------------------------------- STAN


def stan_by_hand(lambda_spw=1.0, lambda_snh=1.0, lambda_inh=1.0):
    """Per-neighbour factors of prefix [2, 0, 2] on toy_split with sessions a day apart."""
    # factor 1: L = 3, w0 = exp((2 - 3) / spw), w2 = exp(0) = 1, norm = sqrt(w0^2 + 1)
    w0 = math.exp(-1 / lambda_spw)
    norm = math.sqrt(w0**2 + 1)
    # factor 2: t_now = the last training session (day 3); s0 is 3 days old, s2 1, s3 0
    sim = {
        "s0": (w0 + 1) / (norm * math.sqrt(3)) * math.exp(-3 / lambda_snh),
        "s2": 1 / (norm * math.sqrt(3)) * math.exp(-1 / lambda_snh),
        "s3": w0 / (norm * math.sqrt(2)),
    }
    # factor 3: p* = last position in n of a shared item; s0 [0,1,2] -> 3, s2 [2,3,4,2] -> 4
    # (item 2's last click), s3 [0,4] -> 1; weight exp(-|p_n(i) - p*| / inh) per neighbour item
    d = lambda steps: math.exp(-steps / lambda_inh)
    inh = {"s0": {0: d(2), 1: d(1), 2: d(0)}, "s2": {2: d(0), 3: d(2), 4: d(1)}, "s3": {0: d(0), 4: d(1)}}
    return sim, inh


def test_stan_by_hand():
    split = toy_split(times=[0, DAY, 2 * DAY, 3 * DAY])
    got = scores(STAN(lambda_spw=1.0, lambda_snh=1.0, lambda_inh=1.0), [2, 0, 2], split=split)
    sim, inh = stan_by_hand()
    expected = np.zeros(6)
    for n in sim:
        for item, weight in inh[n].items():
            expected[item] += sim[n] * weight
    np.testing.assert_allclose(got[0], expected, rtol=1e-6)


def test_stan_recency_is_measured_in_days_of_the_session_times():
    # lambda_snh = 2 days: s0 (3 days old) keeps exp(-3/2), s2 exp(-1/2)
    split = toy_split(times=[0, DAY, 2 * DAY, 3 * DAY])
    got = scores(STAN(lambda_spw=1.0, lambda_snh=2.0, lambda_inh=1.0), [2, 0, 2], split=split)
    sim, inh = stan_by_hand(lambda_snh=2.0)
    assert got[0, 1] == pytest.approx(sim["s0"] * inh["s0"][1], rel=1e-6)  # only s0 has item 1
    assert got[0, 3] == pytest.approx(sim["s2"] * inh["s2"][3], rel=1e-6)  # only s2 has item 3


def test_stan_scores_do_not_depend_on_when_the_training_data_ends():
    # t_now is the end of the training data: shifting every time by a constant changes nothing
    prefix = [2, 0, 2]
    early = scores(STAN(lambda_snh=1.0), prefix, split=toy_split(times=[0, DAY, 2 * DAY, 3 * DAY]))
    late = scores(STAN(lambda_snh=1.0), prefix, split=toy_split(times=[50 * DAY, 51 * DAY, 52 * DAY, 53 * DAY]))
    np.testing.assert_allclose(late, early, rtol=1e-6)


# ---------------------------------------------------------------------------- VSTAN


def test_vstan_by_hand():
    # STAN's contributions times ipw = exp((q_n - L) / ipw), q_n = last prefix position of an item
    # in n (s0: 3, s2: 3, s3: item 0 at 2), times 1 + lambda_idf * idf(i), idf = ln(4 / clicks)
    split = toy_split(times=[0, DAY, 2 * DAY, 3 * DAY])
    model = VSTAN(lambda_spw=1.0, lambda_snh=1.0, lambda_inh=1.0, lambda_ipw=0.5, lambda_idf=2.0)
    got = scores(model, [2, 0, 2], split=split)
    sim, inh = stan_by_hand()
    ipw = {"s0": 1.0, "s2": 1.0, "s3": math.exp((2 - 3) / 0.5)}
    idf = np.log(4 / np.array([2, 2, 3, 2, 2, 1]))
    expected = np.zeros(6)
    for n in sim:
        for item, weight in inh[n].items():
            expected[item] += sim[n] * weight * ipw[n] * (1 + 2.0 * idf[item])
    np.testing.assert_allclose(got[0], expected, rtol=1e-6)


def test_vstan_without_idf_and_ipw_is_stan():
    # lambda_idf = 0 switches IDF off; a 1-click prefix always matches at its last click (ipw = 1)
    split = toy_split(times=[0, DAY, 2 * DAY, 3 * DAY])
    stan = scores(STAN(), [2], [4], split=split)
    vstan = scores(VSTAN(lambda_idf=0.0), [2], [4], split=split)
    np.testing.assert_allclose(vstan, stan, rtol=1e-6)


# ---------------------------------------------------------------------------- all four

ALL = [SKNN, VSKNN, STAN, VSTAN]


@pytest.mark.parametrize("cls", ALL)
def test_the_sample_keeps_the_most_recent_sessions_by_time_not_by_position(cls):
    # every session has item 0; times put s2 (item 3) and s0 (item 1) last; sample_size 2
    train = Sessions.from_lists([[0, 1], [0, 2], [0, 3], [0, 4]], times=[30.0, 10.0, 40.0, 20.0])
    split = Split("recent", train, Sessions.from_lists([[0, 1]]), 5, np.arange(5))
    got = scores(cls(sample_size=2), [0], split=split)[0]
    assert got[1] > 0 and got[3] > 0
    assert got[2] == 0 and got[4] == 0


@pytest.mark.parametrize("cls", ALL)
def test_only_the_most_similar_neighbours_score(cls):
    # prefix [0, 1]: s0 shares two items, s1 and s3 one; with k = 1 only s0's items score
    got = scores(cls(n_neighbors=1), [0, 1])[0]
    assert (got[[0, 1, 2]] > 0).all() and (got[[3, 4, 5]] == 0).all()


@pytest.mark.parametrize("cls", ALL)
def test_a_prefix_matching_no_training_session_gets_zeros_and_is_ranked(cls):
    split = toy_split()
    got = scores(cls(), [5], [99], [-4, 5], [5, 0], split=split)
    np.testing.assert_array_equal(got[:3], 0)
    assert got[3].max() > 0  # the same item beside a known one still scores
    result = evaluate(cls().fit(split, seed=0, progress=False), split.test, progress=False)
    # the prefix [5] scores nothing: conservatively its target ties with all 6 items, standard ranks it first
    assert result.ranks("conservative")[0] == 6 and result.ranks("standard")[0] == 1


@pytest.mark.parametrize("cls", ALL)
def test_small_chunks_score_like_one_chunk(cls, monkeypatch):
    split = load_dataset("synthetic")
    model = cls().fit(split, seed=0, progress=False)
    batch = next(split.test.prefix_batches(batch_size=300)).without_targets()
    whole = as_numpy(model.score(batch))
    monkeypatch.setattr(neighbors, "_PAIR_BUDGET", 1)  # one row per chunk
    np.testing.assert_allclose(as_numpy(model.score(batch)), whole, rtol=1e-6, atol=0)
    assert model.score(batch).dtype == np.float32 and (whole > 0).any(axis=1).mean() > 0.9


@pytest.mark.parametrize("cls", ALL)
def test_beats_pop_on_the_small_synthetic_data(cls):
    from baselines.pop import Pop

    split = load_dataset("synthetic")
    knn = evaluate(cls().fit(split, seed=0, progress=False), split.test, progress=False)
    pop = evaluate(Pop().fit(split, seed=0), split.test, progress=False)
    assert knn.metrics["recall@20"] > pop.metrics["recall@20"] + 0.1


@pytest.mark.parametrize(
    "cls, param, value",
    [
        (SKNN, "n_neighbors", 0),
        (SKNN, "sample_size", 2.5),
        (SKNN, "similarity", "vec"),
        (VSKNN, "weighting", "exp"),
        (VSKNN, "weighting_score", None),
        (VSKNN, "similarity", "jaccard"),
        (VSKNN, "idf_weighting", -1.0),
        (STAN, "lambda_spw", 0.0),
        (STAN, "lambda_snh", -5.0),
        (STAN, "lambda_inh", float("nan")),
        (VSTAN, "lambda_ipw", 0),
        (VSTAN, "lambda_idf", -0.5),
        (VSTAN, "sample_size", 0),
    ],
)
def test_out_of_range_hyperparameters_are_refused_by_name(cls, param, value):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {param} must be"):
        cls(**{param: value})


@pytest.mark.parametrize("cls", ALL)
def test_every_value_of_the_search_space_is_a_valid_hyperparameter(cls):
    assert set(cls.search_space) <= set(cls().get_params())
    for name, space in cls.search_space.items():
        for value in space.options:
            assert cls(**{name: value}).get_params()[name] == value


def test_score_before_fit_names_the_class():
    with pytest.raises(NotFittedError, match="VSTAN"):
        VSTAN().score(PrefixBatch.from_lists([[0]]))


class TestSKNNContract(RecommenderContract):
    def make(self):
        return SKNN()


class TestSKNNCosineContract(RecommenderContract):
    def make(self):
        return SKNN(n_neighbors=20, sample_size=50, similarity="cosine")


class TestVSKNNContract(RecommenderContract):
    def make(self):
        return VSKNN(idf_weighting=1.0)


class TestSTANContract(RecommenderContract):
    def make(self):
        return STAN()


class TestVSTANContract(RecommenderContract):
    def make(self):
        return VSTAN()
