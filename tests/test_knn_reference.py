"""The vectorised session-kNN methods against session-rec's per-prefix loops, restated.

``reference_scores`` walks one prefix the way session-rec's ``predict_next`` does (sets and
dicts, one candidate at a time: algorithms/knn/sknn.py, vsknn.py, stan.py and vstan.py at
commit 5dcd583c), with the two documented changes: equal similarities at the neighbour cut
go to the more recent session, and STAN's "now" is a parameter. Random sessions with
distinct times, small samples (so the per-item cut of the index is exercised) and prefixes
with repeated, unknown and out-of-range clicks.
"""

import math
from collections import defaultdict

import numpy as np
import pytest

from baselines.knn import SKNN, STAN, VSKNN, VSTAN
from sessionbench.data import Sessions, Split
from sessionbench.recommender import PrefixBatch

N_ITEMS = 16  # item 15 is never in a training session; 40 and -3 are outside the index
DAY = 86400


def position_weight(kind, i, length):  # session-rec vsknn.py: linear/same/div/log/quadratic
    return {
        "linear": lambda: 1 - (0.1 * (length - i)) if i <= 10 else 0,
        "same": lambda: 1,
        "div": lambda: i / length,
        "log": lambda: 1 / (math.log10((length - i) + 1.7)),
        "quadratic": lambda: (i / length) ** 2,
    }[kind]()


def step_weight(kind, i):  # session-rec vsknn.py: *_score
    return {
        "linear": lambda: 1 - (0.1 * i) if i <= 100 else 0,
        "same": lambda: 1,
        "div": lambda: 1 / i,
        "log": lambda: 1 / (math.log10(i + 1.7)),
        "quadratic": lambda: 1 / (i * i),
    }[kind]()


def reference_scores(method, params, train, times, prefix, now):
    """One prefix scored as session-rec does it (dense over N_ITEMS)."""
    p = dict(params)
    k, sample_size = p.pop("n_neighbors", 100), p["sample_size"]
    item_sessions = defaultdict(set)
    for s, clicks in enumerate(train):
        for i in clicks:
            item_sessions[i].add(s)
    n_sessions = len(train)
    clicks_of = defaultdict(int)
    for clicks in train:
        for i in clicks:
            clicks_of[i] += 1
    idf = {i: math.log(n_sessions / c) for i, c in clicks_of.items()}

    relevant = set()
    for i in prefix:
        relevant |= item_sessions.get(i, set())
    sample = sorted(relevant, key=lambda s: times[s], reverse=True)[:sample_size]

    length, current = len(prefix), set(prefix)
    pos_map = {}
    for pos, i in enumerate(prefix, 1):
        if method == "sknn":
            pos_map[i] = 1
        elif method == "vsknn":
            pos_map[i] = position_weight(p.get("weighting", "div"), pos, length)
        else:
            pos_map[i] = math.exp((pos - length) / p.get("lambda_spw", 1.02))

    neighbours = []
    for s in sample:
        n = set(train[s])
        shared = current & n
        if method == "sknn":
            if p.get("similarity", "jaccard") == "jaccard":
                sim = len(shared) / len(current | n)
            else:
                sim = len(shared) / (math.sqrt(len(current)) * math.sqrt(len(n)))
        elif method == "vsknn" and p.get("similarity", "vec") == "vec":
            sim = sum(pos_map[i] for i in shared) / len(pos_map)
        else:  # the weighted cosine of vsknn, stan and vstan
            norm = sum(pos_map[i] ** 2 for i in current)
            sim = sum(pos_map[i] for i in shared) / (math.sqrt(norm) * math.sqrt(len(n))) if norm > 0 else 0
        if method in ("stan", "vstan"):
            sim *= math.exp(-(now - times[s]) / (p.get("lambda_snh", 5) * DAY))
        if sim > 0:
            neighbours.append((s, sim))
    neighbours = sorted(neighbours, key=lambda x: (x[1], times[x[0]]), reverse=True)[:k]

    scores = np.zeros(N_ITEMS)
    for s, sim in neighbours:
        clicks = train[s]
        if method == "sknn":
            for i in set(clicks):
                scores[i] += sim
            continue
        step, decay = 1, None
        for i in reversed(prefix):  # vsknn.score_items
            if i in clicks:
                decay = step_weight(p.get("weighting_score", "div"), step)
                break
            step += 1
        if method == "vsknn":
            for i in set(clicks):
                w = sim if not p.get("idf_weighting") else sim + sim * idf[i] * p["idf_weighting"]
                scores[i] += w * decay
            continue
        pos_last, pos_star = {}, None  # stan.score_items
        for j, i in enumerate(clicks):
            if i in current:
                pos_star = j + 1
            pos_last[i] = j + 1
        ipw = None
        for j, i in enumerate(prefix):  # vstan.score_items
            if i in clicks:
                ipw = math.exp((j + 1 - length) / p.get("lambda_ipw", 1.02))
        for i in set(clicks):
            w = sim * math.exp(-abs(pos_last[i] - pos_star) / p.get("lambda_inh", 2.05))
            if method == "vstan":
                w = (w + w * idf[i] * p.get("lambda_idf", 5)) * ipw
            scores[i] += w
    return scores


def random_data(seed):
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, N_ITEMS, dtype=float) ** -1.0  # items 0..14, item 0 the most popular
    popularity /= popularity.sum()
    train = [list(rng.choice(N_ITEMS - 1, size=int(rng.integers(1, 9)), p=popularity)) for _ in range(70)]
    times = rng.permutation(70) * 3600.0 * 7 + rng.random(70)  # distinct, not in list order
    prefixes = [list(rng.choice(N_ITEMS - 1, size=int(rng.integers(1, 14)), p=popularity)) for _ in range(25)]
    prefixes += [[15], [0, 15], [15, 3, 40], [-3, 1, 1, 2], [2, 0, 2, 0, 2], list(range(15)) + [1, 0]]
    return train, times, prefixes


CASES = [
    ("sknn", SKNN, {"sample_size": 1000}),
    ("sknn", SKNN, {"n_neighbors": 4, "sample_size": 6}),
    ("sknn", SKNN, {"n_neighbors": 5, "sample_size": 9, "similarity": "cosine"}),
    ("vsknn", VSKNN, {"sample_size": 1000}),
    ("vsknn", VSKNN, {"n_neighbors": 6, "sample_size": 8, "similarity": "cosine", "idf_weighting": 2.0}),
    *[
        (
            "vsknn",
            VSKNN,
            {"n_neighbors": 7, "sample_size": 10, "weighting": w, "weighting_score": g, "idf_weighting": 1.0},
        )
        for w in ("same", "div", "linear", "quadratic", "log")
        for g in ("same", "div", "linear", "quadratic", "log")
    ],
    ("stan", STAN, {"sample_size": 5000}),
    ("stan", STAN, {"n_neighbors": 5, "sample_size": 7, "lambda_spw": 0.6, "lambda_snh": 0.5, "lambda_inh": 0.8}),
    ("vstan", VSTAN, {"sample_size": 5000}),
    (
        "vstan",
        VSTAN,
        {
            "n_neighbors": 5,
            "sample_size": 7,
            "lambda_spw": 2.5,
            "lambda_snh": 1.0,
            "lambda_ipw": 0.6,
            "lambda_idf": 1.0,
        },
    ),
]


@pytest.mark.parametrize("method, cls, params", CASES)
def test_scores_equal_session_rec_restated(method, cls, params):
    train, times, prefixes = random_data(seed=len(str(params)))
    split = Split(
        "random", Sessions.from_lists(train, times=times), Sessions.from_lists([[0, 1]]), N_ITEMS, np.arange(N_ITEMS)
    )
    model = cls(**params).fit(split, seed=0, progress=False)
    got = np.asarray(model.score(PrefixBatch.from_lists(prefixes)), dtype=np.float64)
    now = max(times)  # the end of the training data
    expected = np.array([reference_scores(method, params, train, times, prefix, now) for prefix in prefixes])
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
    assert (expected != 0).any(axis=1).sum() >= 25  # most rows score something


@pytest.mark.parametrize("method, cls", [("stan", STAN), ("vstan", VSTAN)])
def test_a_later_now_scales_each_row_and_keeps_its_ranking(method, cls):
    # session-rec's "now" is the test click's time; two days after the training data ends,
    # every weight of a row is multiplied by exp(-2 / lambda_snh)
    train, times, prefixes = random_data(seed=1)
    split = Split(
        "random", Sessions.from_lists(train, times=times), Sessions.from_lists([[0, 1]]), N_ITEMS, np.arange(N_ITEMS)
    )
    params = {"sample_size": 10, "n_neighbors": 6, "lambda_snh": 1.5}
    got = np.asarray(
        cls(**params).fit(split, seed=0, progress=False).score(PrefixBatch.from_lists(prefixes)), dtype=np.float64
    )
    later = np.array([reference_scores(method, params, train, times, p, max(times) + 2 * DAY) for p in prefixes])
    np.testing.assert_allclose(got * math.exp(-2 / 1.5), later, rtol=2e-5, atol=1e-9)  # one constant: same ranking
    assert (later > 0).sum() > 100
