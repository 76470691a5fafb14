"""S-POP: recommend the most popular items of the current session (NARM paper, section 4.2).

score(i) = (clicks on i in the prefix) + tiebreak(i), where tiebreak(i) in (0, 1) grows with
i's training clicks: every item of the session outranks every other item, and ties inside the
session and the rest of the ranking fall back to global popularity (POP).

The tie-breaker is the dense rank of the item's training count, scaled into (0, 1): the same
ranking as the count itself, with steps of 1/(distinct counts + 1), large enough for float32 to
keep them apart after adding the session counts (checked per batch; float64 otherwise).
Counts come from the training data actually used (the fraction, for YOOCHOOSE 1/64 and 1/4).

Deviations from the paper/reference: none.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sessionbench.data import Split
from sessionbench.recommender import PrefixBatch, Recommender

__all__ = ["SPop"]


class SPop(Recommender):
    """Session popularity with a global-popularity tie-breaker."""

    name: ClassVar[str] = "spop"
    paper_row: ClassVar[str | None] = "S-POP"

    tiebreak_: np.ndarray | None = None  # float64[n_items] in (0, 1), increasing with popularity
    step_: float | None = None  # smallest difference between two tie-breaker values

    def __init__(self) -> None:
        pass

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> SPop:
        counts = np.bincount(split.train.items, minlength=split.n_items)
        distinct, rank = np.unique(counts, return_inverse=True)
        self.step_ = 1.0 / (len(distinct) + 1)
        self.tiebreak_ = (rank + 1) * self.step_
        return self

    def score(self, batch: PrefixBatch) -> np.ndarray:
        self._check_fitted("tiebreak_")
        # float32 resolves the tie-breaker's steps while they exceed its spacing at the
        # largest possible session count, the prefix length
        longest = int(batch.lengths.max(initial=1))
        dtype = np.float32 if np.spacing(np.float32(longest + 1)) < self.step_ / 4 else np.float64
        scores = np.empty((len(batch), len(self.tiebreak_)), dtype=dtype)
        scores[:] = self.tiebreak_.astype(dtype)
        rows, cols = np.nonzero(batch.mask)
        np.add.at(scores, (rows, batch.items[rows, cols]), 1)
        return scores
