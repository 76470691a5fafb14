"""S-KNN: session-based k-nearest neighbours (Jannach & Ludewig, "When Recurrent Neural
Networks meet the Neighborhood for Session-Based Recommendation", RecSys 2017).

A prefix is the set A of its distinct items. Its candidate neighbours are the training sessions
sharing an item with A; of those only the ``sample_size`` most recent are compared (session-rec's
``sampling="recent"``), and the ``n_neighbors`` most similar of them, K(A), score the items::

    sim(A, n) = |A & n| / |A | n|                   (similarity="jaccard", session-rec's default)
    sim(A, n) = |A & n| / sqrt(|A| * |n|)           (similarity="cosine")
    score(i)  = sum over n in K(A) containing i of sim(A, n)

with n a training session's set of distinct items. This is the paper's scoring rule,
score(i, s) = sum_{n in N_s} sim(s, n) * 1_n(i) (equation numbers were not checked against the
paper's text, of which no copy was at hand).

Reference: session-rec, ``algorithms/knn/sknn.py`` (class ``ContextKNN``), commit 9f719a67
(github.com/rn5l/session-rec; the same at its head 5dcd583c). Defaults are its defaults:
``k`` 100 (its docstring; the argument has none), ``sample_size`` 1000 (its signature; the
docstring says 500), ``similarity`` "jaccard". Items of the prefix are not excluded from the scores (``remind=False`` there means
no extra reminder boost; nothing is removed). Items no neighbour contains score 0; a prefix
sharing no item with any training session gets a row of zeros. Clicks on items outside
0..n_items-1 or without training sessions find nothing but still count in |A|, as they would in
session-rec's item set.

Deviations from the paper/reference:

- ``similarity="cosine"`` is the cosine above; the reference computes
  ``li / sqrt(la) * sqrt(lb)``, which by operator precedence is |A & n| * sqrt(|n|) / sqrt(|A|).
- Ties: at the sample cut, sessions of equal time go by their order in ``split.train`` (later =
  more recent); at the neighbour cut, equal similarities go to the more recent session. The
  reference leaves both to the order of a Python set.
- Not offered: ``sampling="random"`` (and sample_size 0 = all candidates), ``remind``,
  ``pop_boost`` and ``extend`` (all off by default there), and ``normalize`` (dividing a row by
  its maximum, which does not change the ranking). The reference's "binary" and "tanimoto"
  similarities are left out too (tanimoto equals jaccard on sets).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from baselines.knn.neighbors import (
    ItemScores,
    Prefixes,
    SessionIndex,
    SessionKNN,
    recent_candidates,
    scatter_scores,
    top_neighbours,
)
from sessionbench.params import POSITIVE_INT, check_params, one_of
from sessionbench.search_space import Choice, Space

__all__ = ["SKNN"]

_SIMILARITIES = ("jaccard", "cosine")


class SKNN(SessionKNN):
    """Session-kNN over item sets, neighbours drawn from the most recent sessions.

    Args:
        n_neighbors: Neighbours that score items (session-rec's ``k``: 100).
        sample_size: Most recent candidate sessions compared with the prefix (1000).
        similarity: "jaccard" (session-rec's default) or "cosine".

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "sknn"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict] = {}
    #: session-rec's grid for DIGINETICA, conf/save/diginetica/single split/opt/single_digi_knn.yml
    #: (random search over these values, 100 iterations, optimising MRR@20).
    search_space: ClassVar[dict[str, Space]] = {
        "n_neighbors": Choice(50, 100, 500, 1000, 1500),
        "sample_size": Choice(500, 1000, 2500, 5000, 10000),
        "similarity": Choice("cosine", "jaccard"),
    }

    def __init__(self, n_neighbors: int = 100, sample_size: int = 1000, similarity: str = "jaccard") -> None:
        self.n_neighbors = n_neighbors
        self.sample_size = sample_size
        self.similarity = similarity
        check_params(self, n_neighbors=POSITIVE_INT, sample_size=POSITIVE_INT, similarity=one_of(*_SIMILARITIES))

    def _score_rows(self, index: SessionIndex, prefixes: Prefixes) -> ItemScores:
        candidates = recent_candidates(index, prefixes, np.zeros(len(prefixes.row)), self.sample_size)
        shared = candidates.shared.astype(np.float64)
        size_a = prefixes.distinct[candidates.row].astype(np.float64)  # |A|
        size_n = index.session_sizes[candidates.session].astype(np.float64)  # |n|
        if self.similarity == "jaccard":
            sim = shared / (size_a + size_n - shared)
        else:
            sim = shared / np.sqrt(size_a * size_n)
        neighbours = top_neighbours(index, prefixes, candidates, sim, self.n_neighbors)
        # score(i) = sum of sim(A, n) over the neighbours n containing i
        return scatter_scores(neighbours, neighbours.similarity[neighbours.owner], index.n_items)
