"""S-POP: recommend the most popular items of the current session (NARM paper, section 4.2).

score(i) = (clicks on i in the prefix) + (training clicks on i + 1) / (max training clicks + 2).
The second term lies in (0, 1), so every item of the session outranks every other item, and
ties inside the session and the rest of the ranking fall back to global popularity (POP).
Scores are float64: float32 cannot separate the tie-breaker's steps once the session counts
reach ~8.

Deviations from the paper/reference: none.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from sessionbench.data import Split
from sessionbench.recommender import PrefixBatch, Recommender

__all__ = ["SPop"]


class SPop(Recommender):
    """Session popularity with a global-popularity tie-breaker."""

    name: ClassVar[str] = "spop"
    paper_row: ClassVar[str | None] = "S-POP"

    tiebreak_: torch.Tensor | None = None  # float64[n_items] in (0, 1), increasing with popularity

    def __init__(self) -> None:
        pass

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> SPop:
        counts = np.bincount(split.train.items, minlength=split.n_items).astype(np.float64)
        self.tiebreak_ = torch.from_numpy((counts + 1.0) / (counts.max() + 2.0))
        return self

    def score(self, batch: PrefixBatch) -> torch.Tensor:
        self._check_fitted("tiebreak_")
        scores = self.tiebreak_.expand(len(batch), -1).clone()
        rows, cols = np.nonzero(batch.mask)
        scores.index_put_(
            (torch.from_numpy(rows), torch.from_numpy(batch.items[rows, cols])),
            torch.ones(len(rows), dtype=torch.float64),
            accumulate=True,
        )
        return scores
