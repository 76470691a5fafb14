"""VSTAN: STAN with V-SKNN's match-position discount and IDF (Ludewig, Mauro, Latifi, Jannach,
"Empirical Analysis of Session-Based Recommendation Algorithms", UMUAI 2021).

STAN (:mod:`baselines.knn.stan`: its candidates, sample, factors 1-3 and top-k neighbours K(A)
by sim2) with each neighbour item's score also multiplied by the two extensions the paper
takes from V-SKNN (:mod:`baselines.knn.vsknn`), as the reference code writes them::

    score(i) = sum over n in K(A) containing i of
               sim2(A, n) * exp(-|p_n(i) - p_n*| / lambda_inh)        (STAN's factors 1-3)
                          * (1 + lambda_idf * idf(i))                  (IDF, lambda_idf)
                          * exp((q_n - L) / lambda_ipw)                (match position, lambda_ipw)

with L the prefix's clicks, q_n the 1-based position of the most recent prefix click whose item
is in n (so the last click matching gives 1), and idf(i) = ln(training sessions / training
clicks on i), as session-rec counts it. lambda_idf = 0 switches the IDF factor off (the
reference's False).

Times, t_now, unknown clicks and ties: as in :mod:`baselines.knn.stan` (t_now = end of the
training data, which leaves the ranking unchanged; preprocessed data use the session order as
time, so lambda_snh's "day" is 86,400 sessions there).

Reference: session-rec, ``algorithms/knn/vstan.py`` (class ``VSKNN_STAN``), commit 9f719a67
(github.com/rn5l/session-rec; the same at its head 5dcd583c). Defaults are its defaults: ``k``
100 (its docstring), ``sample_size`` 5000, ``lambda_spw`` 1.02, ``lambda_snh`` 5 (days),
``lambda_inh`` 2.05, ``lambda_ipw`` 1.02, ``lambda_idf`` 5. Items of the prefix are not
excluded (``remind=True`` there).

Deviations from the paper/reference:

- STAN's (t_now, tie breaking, not keeping similarity-0 candidates, options not offered).
- No ``similarity`` argument: the reference accepts one (and its DIGINETICA grid tunes
  "cosine" against "vec") but always computes the cosine, so offering it would change nothing
  or change the reference.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from baselines.knn.neighbors import ItemScores, Prefixes, SessionIndex, SessionKNN, idf_of_clicks, scatter_scores
from baselines.knn.stan import inside_neighbour_weight, stan_neighbours
from sessionbench.params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_params
from sessionbench.search_space import Choice, Space

__all__ = ["VSTAN"]


class VSTAN(SessionKNN):
    """STAN plus V-SKNN's match-position discount and IDF boost.

    Args:
        n_neighbors: Neighbours that score items (session-rec's ``k``: 100).
        sample_size: Most recent candidate sessions compared with the prefix (5000).
        lambda_spw: STAN's prefix-position decay (1.02).
        lambda_snh: STAN's neighbour-recency decay, in days of 86,400 time units (5).
        lambda_inh: STAN's in-neighbour distance decay (2.05).
        lambda_ipw: Decay of a neighbour's scores with how far back its most recent match lies
            in the prefix (1.02).
        lambda_idf: Factor of the IDF boost, score * (1 + lambda_idf * idf); 0 = off (5).

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "vstan"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict] = {}
    #: session-rec's grid for DIGINETICA, conf/save/diginetica/single split/opt/single_digi_vstan.yml
    #: (random search, 100 iterations, optimising MRR@20; False there is 0 here; its
    #: "similarity" entry is left out, see the module docstring).
    search_space: ClassVar[dict[str, Space]] = {
        "n_neighbors": Choice(100, 200, 500, 1000, 1500, 2000),
        "sample_size": Choice(1000, 2500, 5000, 10000),
        "lambda_spw": Choice(0.00001, 0.625, 1.25, 2.5, 5.0, 10.0),
        "lambda_snh": Choice(0.00001, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 100.0),
        "lambda_inh": Choice(0.00001, 0.625, 1.25, 2.5, 5.0, 10.0),
        "lambda_ipw": Choice(0.00001, 0.625, 1.25, 2.5, 5.0, 10.0),
        "lambda_idf": Choice(0.0, 1.0, 2.0, 5.0, 10.0),
    }

    idf_: np.ndarray | None = None  # float64[n_items] ln(sessions / clicks), set by fit

    def __init__(
        self,
        n_neighbors: int = 100,
        sample_size: int = 5000,
        lambda_spw: float = 1.02,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.05,
        lambda_ipw: float = 1.02,
        lambda_idf: float = 5.0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.sample_size = sample_size
        self.lambda_spw = lambda_spw
        self.lambda_snh = lambda_snh
        self.lambda_inh = lambda_inh
        self.lambda_ipw = lambda_ipw
        self.lambda_idf = lambda_idf
        check_params(
            self,
            n_neighbors=POSITIVE_INT,
            sample_size=POSITIVE_INT,
            lambda_spw=POSITIVE,
            lambda_snh=POSITIVE,
            lambda_inh=POSITIVE,
            lambda_ipw=POSITIVE,
            lambda_idf=NON_NEGATIVE,
        )

    def _fit_extra(self, index: SessionIndex) -> None:
        self.idf_ = idf_of_clicks(index)

    def _score_rows(self, index: SessionIndex, prefixes: Prefixes) -> ItemScores:
        neighbours = stan_neighbours(
            index, prefixes, self.sample_size, self.n_neighbors, self.lambda_spw, self.lambda_snh
        )
        q = neighbours.per_neighbour_max(neighbours.prefix_position)  # most recent matching prefix click
        ipw = np.exp((q - prefixes.length[neighbours.row]) / self.lambda_ipw)
        owner = neighbours.owner
        values = (
            (neighbours.similarity * ipw)[owner]
            * inside_neighbour_weight(neighbours, self.lambda_inh)
            * (1.0 + self.lambda_idf * self.idf_[neighbours.item])
        )
        return scatter_scores(neighbours, values, index.n_items)
