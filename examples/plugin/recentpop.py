"""A complete sessionbench plugin: one class, one entry point (see pyproject.toml)."""

from typing import ClassVar

import numpy as np

from sessionbench import PrefixBatch, Recommender, Split
from sessionbench.params import NON_NEGATIVE, UNIT, check_params


class RecentPop(Recommender):
    """Global popularity, plus ``boost`` for each item of the session, more for recent clicks."""

    name: ClassVar[str] = "recent-pop"

    popularity_: np.ndarray | None = None  # float32[n_items], training clicks scaled to [0, 1]

    def __init__(self, boost: float = 1.0, decay: float = 0.5):
        self.boost = boost
        self.decay = decay
        check_params(self, boost=NON_NEGATIVE, decay=UNIT)  # "RecentPop: decay must be in [0, 1], got 2"

    def fit(self, split: Split, *, seed: int, device: str = "cpu", progress: bool = True) -> "RecentPop":
        counts = np.bincount(split.train.items, minlength=split.n_items).astype(np.float32)
        self.popularity_ = counts / max(counts.max(), 1.0)
        return self

    def score(self, batch: PrefixBatch) -> np.ndarray:
        self._check_fitted("popularity_")
        scores = np.tile(self.popularity_, (len(batch), 1))
        rows, cols = np.nonzero(batch.mask)
        age = batch.lengths[rows] - 1 - cols  # 0 for the last click
        np.add.at(scores, (rows, batch.items[rows, cols]), self.boost * self.decay**age)
        return scores
