"""Consecutive row ranges under a memory budget: how the non-neural methods (Item-KNN, the
rules, the session-kNN family) bound what they hold at once at YOOCHOOSE 1/4 scale."""

from __future__ import annotations

import numpy as np

__all__ = ["budget_blocks"]


def budget_blocks(cost: np.ndarray, budget: float, max_rows: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ranges [lo, hi) of the rows of ``cost`` whose summed cost stays within
    ``budget`` and that hold at most ``max_rows`` rows; one row at least, so a row costing more
    than the budget gets a range of its own."""
    out, lo, total = [], 0, np.cumsum(cost)
    while lo < len(cost):
        base = total[lo - 1] if lo else 0.0
        hi = max(int(np.searchsorted(total, base + budget, side="right")), lo + 1)
        hi = min(hi, len(cost) if max_rows is None else lo + max_rows, len(cost))
        out.append((lo, hi))
        lo = hi
    return out
