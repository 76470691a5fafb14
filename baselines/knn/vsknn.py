"""V-SKNN: vector multiplication session-based kNN (Ludewig & Jannach, "Evaluation of
Session-based Recommendation Algorithms", UMUAI 2018).

S-KNN (:mod:`baselines.knn.sknn`) with the prefix as a vector that weights recent clicks more,
an optional IDF boost of rare items, and neighbour scores discounted by how far back in the
prefix the neighbour's match lies. For a prefix of L clicks with distinct items A, an item's
weight is taken at its last click, at 1-based position p (``weighting``)::

    same: 1    div: p / L    quadratic: (p / L)^2    log: 1 / log10(L - p + 1.7)
    linear: 1 - 0.1 (L - p) if p <= 10 else 0     (the reference's condition, on p itself)

The candidates and the ``sample_size`` most recent of them are S-KNN's (every training session
sharing an item with A). The similarity (``similarity``) is::

    vec:    sim(A, n) = sum over i in A & n of w(i) / |A|             (session-rec's default)
    cosine: sim(A, n) = sum over i in A & n of w(i) / (sqrt(sum over i in A of w(i)^2) sqrt(|n|))

and of the ``n_neighbors`` most similar (sim > 0), K(A), each scores its items as::

    score(i) = sum over n in K(A) containing i of sim(A, n) * g(step_n) * (1 + idf_weighting * idf(i))

step_n = L - (position of the most recent prefix click whose item is in n) + 1, i.e. 1 when the
last click matches; g (``weighting_score``) is same: 1, div: 1 / step, quadratic: 1 / step^2,
log: 1 / log10(step + 1.7), linear: 1 - 0.1 step if step <= 100 else 0. idf(i) =
ln(training sessions / training clicks on i), as session-rec counts it (clicks, not sessions);
``idf_weighting`` 0 switches it off (session-rec's False).

Reference: session-rec, ``algorithms/knn/vsknn.py`` (class ``VMContextKNN``), commit 56ce2864
(github.com/rn5l/session-rec; the same at its head 5dcd583c). Defaults are its defaults: ``k``
100 (its docstring; the argument has none), ``sample_size`` 1000, ``similarity`` "vec",
``weighting`` "div", ``weighting_score`` "div", ``idf_weighting`` False. Items of the prefix
are not excluded (``remind=True`` there). Linear weights can be 0 or negative, as there; a
neighbour whose similarity is not positive is dropped, as there. Clicks on items outside
0..n_items-1 or without training sessions match nothing but keep their place in the prefix
(its length L, the positions, |A| and the norm), as in the reference's item list.

Deviations from the paper/reference:

- Ties: at the sample cut, sessions of equal time go by their order in ``split.train``; at
  the neighbour cut, equal similarities go to the more recent session (the reference leaves
  both to a Python set's order).
- ``similarity="cosine"`` with a prefix whose weights are all 0 gives similarity 0 (the
  reference divides by zero).
- Not offered (off by default there): ``sampling="random"``, ``dwelling_time``,
  ``last_n_days``, ``last_n_clicks``, ``push_reminders``, ``add_reminders``, ``extend``,
  ``weighting_time``, ``idf_weighting_session``, ``remind=False``; and ``normalize``
  (dividing a row by its maximum, which keeps the ranking when the maximum is positive). The
  reference's "jaccard" similarity is left out: it takes two arguments where vsknn passes
  three, so it cannot run there.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from baselines.knn.neighbors import (
    ItemScores,
    Prefixes,
    SessionIndex,
    SessionKNN,
    cosine,
    idf_of_clicks,
    recent_candidates,
    scatter_scores,
    top_neighbours,
)
from sessionbench.params import NON_NEGATIVE, POSITIVE_INT, check_params, one_of
from sessionbench.search_space import Choice, Space

__all__ = ["VSKNN"]

_DECAYS = ("same", "div", "linear", "quadratic", "log")
_SIMILARITIES = ("vec", "cosine")


def position_weight(kind: str, position: np.ndarray, length: np.ndarray) -> np.ndarray:
    """float64: weight of a prefix click at 1-based ``position`` in a prefix of ``length``."""
    p, n = position.astype(np.float64), length.astype(np.float64)
    if kind == "same":
        return np.ones_like(p)
    if kind == "div":
        return p / n
    if kind == "quadratic":
        return (p / n) ** 2
    if kind == "log":
        return 1.0 / np.log10(n - p + 1.7)
    return np.where(p <= 10, 1.0 - 0.1 * (n - p), 0.0)  # linear, as the reference writes it


def step_weight(kind: str, step: np.ndarray) -> np.ndarray:
    """float64: the discount of a neighbour matched ``step`` clicks from the prefix's end (1 = last)."""
    i = step.astype(np.float64)
    if kind == "same":
        return np.ones_like(i)
    if kind == "div":
        return 1.0 / i
    if kind == "quadratic":
        return 1.0 / i**2
    if kind == "log":
        return 1.0 / np.log10(i + 1.7)
    return np.where(i <= 100, 1.0 - 0.1 * i, 0.0)  # linear


class VSKNN(SessionKNN):
    """S-KNN with position-weighted prefixes, match-position discounts and optional IDF.

    Args:
        n_neighbors: Neighbours that score items (session-rec's ``k``: 100).
        sample_size: Most recent candidate sessions compared with the prefix (1000).
        similarity: "vec" (session-rec's default) or "cosine".
        weighting: Weight of a prefix click by its position: same, div (default), linear,
            quadratic or log.
        weighting_score: Discount of a neighbour by the position of its most recent match:
            same, div (default), linear, quadratic or log.
        idf_weighting: Factor of the IDF boost, score * (1 + idf_weighting * idf); 0 = off
            (default, session-rec's False).

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "vsknn"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict] = {}
    #: session-rec's grid for DIGINETICA, conf/save/diginetica/single split/opt/single_digi_knn.yml
    #: (random search over these values, 100 iterations, optimising MRR@20; False there is 0 here).
    search_space: ClassVar[dict[str, Space]] = {
        "n_neighbors": Choice(50, 100, 500, 1000, 1500),
        "sample_size": Choice(500, 1000, 2500, 5000, 10000),
        "weighting": Choice(*_DECAYS),
        "weighting_score": Choice(*_DECAYS),
        "idf_weighting": Choice(0.0, 1.0, 2.0, 5.0, 10.0),
    }

    idf_: np.ndarray | None = None  # float64[n_items] ln(sessions / clicks), set by fit

    def __init__(
        self,
        n_neighbors: int = 100,
        sample_size: int = 1000,
        similarity: str = "vec",
        weighting: str = "div",
        weighting_score: str = "div",
        idf_weighting: float = 0.0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.sample_size = sample_size
        self.similarity = similarity
        self.weighting = weighting
        self.weighting_score = weighting_score
        self.idf_weighting = idf_weighting
        check_params(
            self,
            n_neighbors=POSITIVE_INT,
            sample_size=POSITIVE_INT,
            similarity=one_of(*_SIMILARITIES),
            weighting=one_of(*_DECAYS),
            weighting_score=one_of(*_DECAYS),
            idf_weighting=NON_NEGATIVE,
        )

    def _fit_extra(self, index: SessionIndex) -> None:
        self.idf_ = idf_of_clicks(index)

    def _score_rows(self, index: SessionIndex, prefixes: Prefixes) -> ItemScores:
        weights = position_weight(self.weighting, prefixes.last, prefixes.length[prefixes.row])
        candidates = recent_candidates(index, prefixes, weights, self.sample_size)
        if self.similarity == "vec":  # sum of the shared items' weights / |A|
            sim = candidates.weighted / prefixes.distinct[candidates.row]
        else:
            sim = cosine(index, prefixes, candidates, weights)
        neighbours = top_neighbours(index, prefixes, candidates, sim, self.n_neighbors)
        # step = L - (last prefix position of any item the neighbour shares) + 1
        step = prefixes.length[neighbours.row] - neighbours.per_neighbour_max(neighbours.prefix_position) + 1
        weight = neighbours.similarity * step_weight(self.weighting_score, step)
        values = weight[neighbours.owner] * (1.0 + self.idf_weighting * self.idf_[neighbours.item])
        return scatter_scores(neighbours, values, index.n_items)
