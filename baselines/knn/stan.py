"""STAN: sequence and time aware neighbourhood (Garg, Gupta, Malhotra, Vig, Shroff,
"Sequence and Time Aware Neighborhood for Session-based Recommendations: STAN", SIGIR 2019).

S-KNN (:mod:`baselines.knn.sknn`) with three exponential decays. For a prefix of L clicks with
distinct items A, and a training session n (its distinct items; t_n the time of its last click):

1. position in the prefix (``lambda_spw``): an item's weight, taken at its last click, at
   1-based position p, is w(i) = exp((p - L) / lambda_spw); the similarity is session-rec's
   weighted cosine,
   sim1(A, n) = sum over i in A & n of w(i) / (sqrt(sum over i in A of w(i)^2) * sqrt(|n|));
2. recency of the neighbour (``lambda_snh``, in days):
   sim2(A, n) = sim1(A, n) * exp(-(t_now - t_n) / (lambda_snh * 86400));
3. distance inside the neighbour (``lambda_inh``): of the ``n_neighbors`` candidates with the
   highest sim2, K(A), each scores its items as
   score(i) = sum over n in K(A) containing i of sim2(A, n) * exp(-|p_n(i) - p_n*| / lambda_inh),
   p_n(i) the 1-based position of i's last click in n and p_n* the largest such position of an
   item n shares with the prefix.

The candidates, and the ``sample_size`` most recent of them, are S-KNN's. The factors are
numbered as the paper's three; the formulas are the reference code's (no copy of the paper was
at hand to check its equation numbers or its wording of each factor against them). Note what
the code does: factor 1 normalises by the norm of the weights, and p_n* is the last click in n
of *any* item it shares with the prefix.

Time. ``Sessions.times`` are unix seconds for data read from clicks; the preprocessed
NARM/SR-GNN forms have no times, and their ``times`` hold each session's position in the file
(see :mod:`sessionbench.data.preprocessed`): the session order then stands for time, one
"second" per session, so lambda_snh = 5 "days" is 432,000 sessions (on DIGINETICA's 186,670
training sessions the oldest keeps exp(-186670 / 432000) = 0.65 of its weight). A batch to
score carries no time, so t_now is the end of the training data (the latest training session's
time). Any later "now" multiplies every recency weight of a prefix by the same constant
exp(-(t_now - t_end) / (lambda_snh * 86400)), which changes neither the top neighbours nor the
ranking of the items, only the scale of the row.

Reference: session-rec, ``algorithms/knn/stan.py`` (class ``STAN``), commit 9f719a67
(github.com/rn5l/session-rec; the same at its head 5dcd583c). Defaults are its defaults: ``k``
100 (its docstring; the argument has none), ``sample_size`` 5000, ``lambda_spw`` 1.02,
``lambda_snh`` 5 (days), ``lambda_inh`` 2.05. Items of the prefix are not excluded
(``remind=True`` there). Clicks on items outside 0..n_items-1 or without training sessions
match nothing but keep their place in the prefix (L, the positions and the norm).

Deviations from the paper/reference:

- t_now is the end of the training data, not the test click's time (see above; rankings equal).
- Ties: at the sample cut, sessions of equal time go by their order in ``split.train``; at the
  neighbour cut, equal similarities go to the more recent session (the reference: a Python
  set's order). Candidates of similarity 0 (an underflowed decay) are not kept as neighbours;
  they would add 0 to every score.
- Not offered: ``sampling="random"``, ``extend``, ``remind=False``, and switching a decay off
  with None (session-rec's grids use lambda = 0.00001 instead).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from baselines.knn.neighbors import (
    ItemScores,
    Neighbours,
    Prefixes,
    SessionIndex,
    SessionKNN,
    cosine,
    recent_candidates,
    scatter_scores,
    top_neighbours,
)
from sessionbench.params import POSITIVE, POSITIVE_INT, check_params
from sessionbench.search_space import Choice, Space

__all__ = ["STAN"]

#: session-rec multiplies lambda_snh (days) by this to compare it with times in seconds.
SECONDS_PER_DAY = 24 * 3600


def stan_neighbours(
    index: SessionIndex, prefixes: Prefixes, sample_size: int, k: int, lambda_spw: float, lambda_snh: float
) -> Neighbours:
    """The top-k neighbours by sim2 (factors 1 and 2), shared by STAN and VSTAN."""
    weights = np.exp((prefixes.last - prefixes.length[prefixes.row]) / lambda_spw)  # factor 1: w(i)
    candidates = recent_candidates(index, prefixes, weights, sample_size)
    age = index.times[-1] - index.times[candidates.session]  # t_now - t_n, t_now = end of training
    sim = cosine(index, prefixes, candidates, weights) * np.exp(-age / (lambda_snh * SECONDS_PER_DAY))  # factor 2
    return top_neighbours(index, prefixes, candidates, sim, k)


def inside_neighbour_weight(neighbours: Neighbours, lambda_inh: float) -> np.ndarray:
    """float64[E]: factor 3, exp(-|p_n(i) - p_n*| / lambda_inh) for every neighbour item."""
    shared = np.where(neighbours.prefix_position > 0, neighbours.item_position, 0)
    anchor = neighbours.per_neighbour_max(shared)[neighbours.owner]  # p_n*
    return np.exp(-np.abs(neighbours.item_position - anchor) / lambda_inh)


class STAN(SessionKNN):
    """Session-kNN with decays for prefix position, neighbour recency and in-neighbour distance.

    Args:
        n_neighbors: Neighbours that score items (session-rec's ``k``: 100).
        sample_size: Most recent candidate sessions compared with the prefix (5000).
        lambda_spw: Decay of a prefix click's weight with its distance from the end (1.02).
        lambda_snh: Decay of a neighbour's weight with its age, in days of 86,400 time units
            (5; on preprocessed data a unit is one session, see the module docstring).
        lambda_inh: Decay of an item's score with its distance from the shared item inside the
            neighbour (2.05).

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "stan"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict] = {}
    #: session-rec's grid for DIGINETICA, conf/save/diginetica/single split/opt/single_digi_stan.yml
    #: (random search over these values, 100 iterations, optimising MRR@20).
    search_space: ClassVar[dict[str, Space]] = {
        "n_neighbors": Choice(100, 200, 500, 1000, 1500, 2000),
        "sample_size": Choice(1000, 2500, 5000, 10000),
        "lambda_spw": Choice(0.00001, 0.625, 1.25, 2.5, 5.0, 10.0),
        "lambda_snh": Choice(0.00001, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 100.0),
        "lambda_inh": Choice(0.00001, 0.625, 1.25, 2.5, 5.0, 10.0),
    }

    def __init__(
        self,
        n_neighbors: int = 100,
        sample_size: int = 5000,
        lambda_spw: float = 1.02,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.05,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.sample_size = sample_size
        self.lambda_spw = lambda_spw
        self.lambda_snh = lambda_snh
        self.lambda_inh = lambda_inh
        check_params(
            self,
            n_neighbors=POSITIVE_INT,
            sample_size=POSITIVE_INT,
            lambda_spw=POSITIVE,
            lambda_snh=POSITIVE,
            lambda_inh=POSITIVE,
        )

    def _score_rows(self, index: SessionIndex, prefixes: Prefixes) -> ItemScores:
        neighbours = stan_neighbours(
            index, prefixes, self.sample_size, self.n_neighbors, self.lambda_spw, self.lambda_snh
        )
        values = neighbours.similarity[neighbours.owner] * inside_neighbour_weight(neighbours, self.lambda_inh)
        return scatter_scores(neighbours, values, index.n_items)
