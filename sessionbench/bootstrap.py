"""Paired comparison of two methods over test sessions: a bootstrap that resamples sessions.

The prefixes of one test session are not independent cases (they share the session's items and
its user), so an interval computed as if they were is too narrow. :func:`paired_bootstrap`
resamples whole sessions with replacement, recomputes the difference of the two methods' mean
per-case metric on each resample, and reports the observed difference with the 2.5 and 97.5
percentiles of the resampled ones and a two-sided p-value from the same resamples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sessionbench.evaluation import ranks_from_counts

__all__ = ["PairedDifference", "case_metrics", "paired_bootstrap"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of x - y over the cases, its 95% interval over sessions, and its p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    n_sessions: int
    n_resamples: int


def case_metrics(greater: np.ndarray, equal: np.ndarray, k: int = 20, ties: str = "conservative") -> dict[str, np.ndarray]:
    """Per-case hit@k (0/1) and reciprocal rank@k (0 beyond k): float64[n_cases] each, whose
    means are Recall@k and MRR@k."""
    ranks = ranks_from_counts(np.asarray(greater), np.asarray(equal), ties)
    hit = ranks <= k
    return {f"recall@{k}": hit.astype(np.float64), f"mrr@{k}": np.where(hit, 1.0 / ranks, 0.0)}


def paired_bootstrap(
    x: np.ndarray, y: np.ndarray, session: np.ndarray, n_resamples: int = 2000, seed: int = 0
) -> PairedDifference:
    """The difference mean(x) - mean(y) of two methods' per-case values on the same cases.

    Args:
        x, y: float[n_cases] per-case values (e.g. :func:`case_metrics`), in the same case order.
        session: int[n_cases] the test session each case belongs to.
        n_resamples: Bootstrap resamples of the sessions.
        seed: Seeds the resampling.

    Returns:
        The observed difference, the 2.5 and 97.5 percentiles of the resampled differences, and
        the two-sided p-value 2 min(P*(d <= 0), P*(d >= 0)) (at least 1 / n_resamples).

    Raises:
        ValueError: the three arrays differ in length, or there are no cases.
    """
    x, y, session = np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(session)
    if not len(x) == len(y) == len(session) or len(x) == 0:
        raise ValueError(f"paired_bootstrap: x, y and session must be equally long and not empty, got {len(x)}, {len(y)}, {len(session)}")
    _, group = np.unique(session, return_inverse=True)
    diff = np.bincount(group, weights=x - y)  # per session: sum of differences, and its cases
    count = np.bincount(group).astype(np.float64)
    rng = np.random.default_rng(seed)
    resampled = np.empty(n_resamples)
    block = max(1, 2**22 // len(count))  # resamples drawn at once: about 4M indices in memory
    for lo in range(0, n_resamples, block):
        idx = rng.integers(0, len(count), size=(min(block, n_resamples - lo), len(count)))
        resampled[lo : lo + len(idx)] = diff[idx].sum(axis=1) / count[idx].sum(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    p = 2 * min((resampled <= 0).mean(), (resampled >= 0).mean())
    return PairedDifference(
        difference=float(diff.sum() / count.sum()),
        low=float(low),
        high=float(high),
        p_value=float(min(1.0, max(p, 1.0 / n_resamples))),
        n_sessions=len(count),
        n_resamples=n_resamples,
    )
