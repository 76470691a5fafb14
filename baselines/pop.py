"""POP: recommend the items clicked most often in the training data (NARM paper, section 4.2).

Counts come from the training data actually used: for YOOCHOOSE 1/64 and 1/4 only the fraction,
so items seen only in older data score 0. Every prefix gets the same scores, which are
returned as a broadcast view (no copy per case).

Deviations from the paper/reference: none.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from sessionbench.data import Split
from sessionbench.recommender import PrefixBatch, Recommender

__all__ = ["Pop"]


class Pop(Recommender):
    """Global popularity: score of item i = its number of clicks in ``split.train``."""

    name: ClassVar[str] = "pop"
    paper_row: ClassVar[str | None] = "POP"

    counts_: np.ndarray | None = None  # float32[n_items] training clicks per item

    def __init__(self) -> None:
        pass

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> Pop:
        self.counts_ = np.bincount(split.train.items, minlength=split.n_items).astype(np.float32)
        return self

    def score(self, batch: PrefixBatch) -> torch.Tensor:
        self._check_fitted("counts_")
        return torch.from_numpy(self.counts_).expand(len(batch), -1)
