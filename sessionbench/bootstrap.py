"""Paired comparison of two methods over test sessions: a bootstrap that resamples sessions.

The prefixes of one test session are not independent cases (they share the session's items and
its user), so an interval computed as if they were is too narrow. :func:`paired_bootstrap`
resamples whole sessions with replacement, recomputes the difference of the two methods' mean
per-case metric on each resample, and reports the observed difference with the 2.5 and 97.5
percentiles of the resampled ones and a two-sided p-value from the same resamples.
:func:`paired_bootstrap_columns` does the same for several comparisons at once (Recall@20 and
MRR@20, of many methods against one), all on the same resampled sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sessionbench.evaluation import ranks_from_counts

__all__ = ["PairedDifference", "case_metrics", "paired_bootstrap", "paired_bootstrap_columns"]


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
        the two-sided p-value 2 min(P*(d <= 0), P*(d >= 0)) (at least 1 / n_resamples). It is
        the one column of :func:`paired_bootstrap_columns` on ``x[:, None]``, ``y[:, None]``.

    Raises:
        ValueError: x or y is not one-dimensional, the three arrays differ in length, or there
            are no cases.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"paired_bootstrap: x and y must be one-dimensional, got shapes {x.shape} and {y.shape}; "
                         "paired_bootstrap_columns takes several metrics at once")
    return paired_bootstrap_columns(x[:, None], y[:, None], session, n_resamples, seed)[0]


def paired_bootstrap_columns(
    x: np.ndarray, y: np.ndarray, session: np.ndarray, n_resamples: int = 2000, seed: int = 0
) -> list[PairedDifference]:
    """:func:`paired_bootstrap` of every column of ``x`` against the same column of ``y``,
    all on the same resampled sessions, in one pass.

    Each resample draws sessions with replacement; every column's resampled difference is the
    difference of the two means over the cases of the drawn sessions. The draws are those
    :func:`paired_bootstrap` makes with the same ``seed`` and number of sessions, so column j
    here is ``paired_bootstrap(x[:, j], y[:, j], session, n_resamples, seed)``. Many columns
    (several metrics, several methods against one baseline) cost about as much as one.

    Args:
        x, y: float[n_cases, m] per-case values of m paired comparisons, in the same case order.
        session: int[n_cases] the test session each case belongs to.
        n_resamples: Bootstrap resamples of the sessions.
        seed: Seeds the resampling.

    Returns:
        One :class:`PairedDifference` per column, in column order.

    Raises:
        ValueError: x and y are not two-dimensional of one shape, they and session differ in
            length, or there are no cases.
    """
    x, y, session = np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(session)
    if not len(x) == len(y) == len(session) or len(x) == 0:
        raise ValueError(f"paired_bootstrap: x, y and session must be equally long and not empty, got {len(x)}, {len(y)}, {len(session)}")
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"paired_bootstrap_columns: x and y must be float[n_cases, m] of one shape, got {x.shape} and {y.shape}")
    diff, count = _per_session(x - y, session)
    resampled = _resampled_differences(diff, count, n_resamples, seed)
    low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    p = 2 * np.minimum((resampled <= 0).mean(axis=0), (resampled >= 0).mean(axis=0))
    p = np.clip(p, 1.0 / n_resamples, 1.0)
    observed = diff.sum(axis=0) / count.sum()
    return [
        PairedDifference(float(d), float(lo), float(hi), float(pv), n_sessions=len(count), n_resamples=n_resamples)
        for d, lo, hi, pv in zip(observed, low, high, p)
    ]


def _per_session(diff: np.ndarray, session: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per session: the sums of ``diff``'s columns (float64[n_sessions, m]) and its number of
    cases (float64[n_sessions]), sessions in the order of their ids."""
    _, group = np.unique(session, return_inverse=True)
    group = group.reshape(-1)
    count = np.bincount(group)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    return np.add.reduceat(diff[order], starts, axis=0), count.astype(np.float64)


def _resampled_differences(diff: np.ndarray, count: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """float64[n_resamples, m]: each column's difference of means over the cases of sessions
    drawn with replacement, from per-session sums ``diff`` and case counts ``count``."""
    n = len(count)
    rng = np.random.default_rng(seed)
    resampled = np.empty((n_resamples, diff.shape[1]))
    block = max(1, 2**22 // n)  # resamples drawn at once: about 4M indices in memory
    for lo in range(0, n_resamples, block):
        drawn = _times_drawn(rng.integers(0, n, size=(min(block, n_resamples - lo), n)), n)
        resampled[lo : lo + len(drawn)] = (drawn @ diff) / (drawn @ count)[:, None]
    return resampled


def _times_drawn(index: np.ndarray, n: int) -> np.ndarray:
    """float64[rows, n]: how often each of n sessions occurs in each row of ``index``."""
    rows = len(index)
    flat = (index + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
