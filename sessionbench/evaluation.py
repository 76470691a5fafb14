"""Full-ranking evaluation: ranks of the targets among all items, Recall@K, MRR@K, and hits per
prefix length (the paper's Table 5).

For every test case the evaluator counts the items scoring strictly above the target
(``greater``) and the other items scoring exactly the same (``equal``). Both are kept, so every
tie mode can be computed later from saved results without scoring again:

- ``conservative`` (default): rank = 1 + greater + equal; ties count against the target.
- ``standard``: rank = 1 + greater; ties count for it.
- ``median``: rank = 1 + greater + equal / 2; ties split evenly.

Scores are ranked in batches with torch on the device the recommender returned them on; the
full cases x items matrix is never held.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionbench.recommender import PrefixBatch

if TYPE_CHECKING:  # pragma: no cover
    from sessionbench.data import Sessions
    from sessionbench.recommender import Recommender

__all__ = [
    "HEADLINE_K",
    "KS",
    "TIE_MODES",
    "EvaluationResult",
    "ScoreError",
    "evaluate",
    "hits_by_length",
    "metrics",
    "rank_of_targets",
    "ranks_from_counts",
]

TIE_MODES = ("conservative", "standard", "median")
KS = (5, 10, 20)
HEADLINE_K = 20
#: Prefix lengths of Table 5: 1..19 each, and 20 or longer as one bucket.
LENGTH_BUCKETS = 20


class ScoreError(ValueError):
    """A recommender returned scores that cannot be ranked (wrong shape or dtype, NaN, inf)."""


def _tie_counts(
    scores: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """(greater, equal): int64[B] counts of other items scoring above / the same as the target.

    On the CPU the counting runs in numpy, whose boolean row sums are about ten times faster
    than torch's here; on a GPU it stays in torch, on the scores' device.
    """
    n_cases = len(targets)
    shape = tuple(scores.shape)
    if len(shape) != 2 or shape[0] != n_cases:
        raise ScoreError(f"{name}: scores must be float[{n_cases}, n_items], got shape {shape}")
    is_float = scores.is_floating_point() if isinstance(scores, torch.Tensor) else np.issubdtype(scores.dtype, np.floating)
    if not is_float:
        raise ScoreError(f"{name}: scores must be floating point, got {scores.dtype} (shape {shape})")
    if isinstance(scores, torch.Tensor) and scores.device.type != "cpu":
        return _tie_counts_torch(scores, targets, name)
    if isinstance(scores, torch.Tensor):
        scores = scores.detach()
        scores = (scores if scores.dtype in (torch.float32, torch.float64) else scores.float()).numpy()
    targets = np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets, dtype=np.int64)
    if not (np.isfinite(scores.max()) and np.isfinite(scores.min())):  # max and min propagate NaN
        _raise_not_finite(np.argwhere(~np.isfinite(scores))[0], scores, name)
    target_score = scores[np.arange(n_cases), targets][:, None]
    greater = np.count_nonzero(scores > target_score, axis=1)
    equal = np.count_nonzero(scores == target_score, axis=1) - 1
    return greater.astype(np.int64), equal.astype(np.int64)


def _tie_counts_torch(scores: torch.Tensor, targets: np.ndarray | torch.Tensor, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = torch.as_tensor(targets, device=scores.device, dtype=torch.int64)
    low, high = torch.aminmax(scores)
    if not (torch.isfinite(low) and torch.isfinite(high)):
        _raise_not_finite((~torch.isfinite(scores)).nonzero()[0].tolist(), scores, name)
    target_score = scores.gather(1, t[:, None])
    greater = (scores > target_score).sum(1)
    equal = (scores == target_score).sum(1) - 1
    return greater.cpu().numpy(), equal.cpu().numpy()


def _raise_not_finite(where: Sequence[int], scores: np.ndarray | torch.Tensor, name: str) -> None:
    row, col = int(where[0]), int(where[1])
    value = float(scores[row, col])
    raise ScoreError(f"{name}: score[{row}, {col}] is {value}; scores must be finite")


def ranks_from_counts(greater: np.ndarray, equal: np.ndarray, ties: str = "conservative") -> np.ndarray:
    """1-based ranks (float64[B]) from the counts of items above and tied with the target."""
    if ties == "conservative":
        return 1.0 + greater + equal
    if ties == "standard":
        return 1.0 + greater
    if ties == "median":
        return 1.0 + greater + equal / 2.0
    raise ValueError(f"ties must be one of {', '.join(TIE_MODES)}, got {ties!r}")


def rank_of_targets(
    scores: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    ties: str = "conservative",
    *,
    name: str = "scores",
) -> np.ndarray:
    """1-based rank of each target among all items.

    Args:
        scores: float[B, n_items], higher is better (numpy or torch, any device).
        targets: int64[B] item index of each case's target.
        ties: "conservative" (every other item scoring >= the target is ahead of it),
            "standard" (only items scoring >), or "median" (ties split evenly).
        name: The recommender's name, for error messages.

    Returns:
        float64[B] ranks (integral except in median mode).

    Raises:
        ScoreError: scores of the wrong shape or dtype, or not finite.
    """
    if ties not in TIE_MODES:
        raise ValueError(f"ties must be one of {', '.join(TIE_MODES)}, got {ties!r}")
    greater, equal = _tie_counts(scores, targets, name)
    return ranks_from_counts(greater, equal, ties)


def metrics(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """Recall@K and MRR@K over the cases (fractions in [0, 1]).

    Recall@K = |{cases: rank <= K}| / |cases| and MRR@K = mean over cases of 1/rank if
    rank <= K else 0, as in the NARM paper (section 4.3) and GRU4Rec's evaluation.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    n = max(len(ranks), 1)
    for k in ks:
        hit = ranks <= k
        out[f"recall@{k}"] = float(hit.sum() / n)
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / ranks, 0.0).sum() / n)
    return out


def hits_by_length(ranks: np.ndarray, prefix_lengths: np.ndarray, k: int = HEADLINE_K) -> dict[str, dict[str, int]]:
    """Cases and hits@k per prefix length: keys "1".."19" and "20+" (the paper's Table 5)."""
    bucket = np.minimum(np.asarray(prefix_lengths), LENGTH_BUCKETS)
    cases = np.bincount(bucket, minlength=LENGTH_BUCKETS + 1)
    hits = np.bincount(bucket, weights=np.asarray(ranks) <= k, minlength=LENGTH_BUCKETS + 1)
    return {
        (f"{b}+" if b == LENGTH_BUCKETS else str(b)): {"cases": int(cases[b]), "hits": int(hits[b])}
        for b in range(1, LENGTH_BUCKETS + 1)
    }


@dataclass
class EvaluationResult:
    """What one evaluation produced.

    Attributes:
        greater: int64[n_cases] items scoring strictly above the target.
        equal: int64[n_cases] other items scoring exactly the target's score.
        prefix_lengths: int64[n_cases] length of each case's prefix.
        ties: The tie mode of ``metrics`` and ``per_length``.
        metrics: Recall@K and MRR@K.
        per_length: Cases and hits@20 per prefix length.
    """

    greater: np.ndarray
    equal: np.ndarray
    prefix_lengths: np.ndarray
    ties: str
    metrics: dict[str, float]
    per_length: dict[str, dict[str, int]]

    def ranks(self, ties: str | None = None) -> np.ndarray:
        """float64[n_cases] ranks under ``ties`` (default: this result's mode)."""
        return ranks_from_counts(self.greater, self.equal, ties or self.ties)


def _sealed_batches(sessions: Sessions, batch_size: int) -> Iterator[tuple[np.ndarray, PrefixBatch]]:
    """Every case, as (positions in :meth:`Sessions.prefix_cases` order, batch), shortest
    prefixes first and never two prefixes of one session in a batch.

    A session's prefix k + 1 holds the target of its prefix k: scored side by side (as the
    cases come, session by session), a model could read the answer off the next row. Batches of
    one prefix length hold one prefix per session, and every prefix is scored before any
    longer prefix of its session is shown.
    """
    session, length = sessions.prefix_cases()
    order = np.lexsort((session, length))
    bounds = np.flatnonzero(np.diff(length[order])) + 1
    for group in np.split(order, bounds):
        for lo in range(0, len(group), batch_size):
            index = group[lo : lo + batch_size]
            yield index, sessions.gather_prefixes(session[index], length[index])


def evaluate(
    recommender: Recommender,
    sessions: Sessions,
    *,
    n_items: int | None = None,
    batch_size: int = 512,
    ties: str = "conservative",
    ks: Sequence[int] = KS,
    progress: bool = True,
) -> EvaluationResult:
    """Score every prefix of every session and rank each target among all items.

    The recommender scores copies of the prefixes with no targets, one prefix length at a
    time (so no batch holds a longer prefix of a session beside a shorter one, whose target it
    contains); the targets and prefix lengths the cases are graded by never leave this
    function. Results come back in :meth:`Sessions.prefix_cases` order.

    Args:
        recommender: A fitted recommender.
        sessions: Test sessions; each prefix (shortest first) is a case.
        n_items: Expected score width; checked on every batch (default: the first batch's).
        batch_size: Cases scored at once; memory is about batch_size x n_items floats.
        ties: Tie mode of the returned metrics (the raw counts allow all three).
        ks: Cut-offs of Recall@K and MRR@K.
        progress: Show a progress bar.

    Raises:
        ScoreError: a batch of scores of the wrong shape or dtype, or not finite; the message
            names the recommender.
    """
    name = getattr(recommender, "name", "") or type(recommender).__name__
    total = sessions.n_prefixes
    greater = np.empty(total, dtype=np.int64)
    equal = np.empty(total, dtype=np.int64)
    with tqdm(total=total, desc=f"evaluate {name}", unit="case", disable=not progress, leave=False) as bar:
        for index, cases in _sealed_batches(sessions, batch_size):
            batch, targets = cases.without_targets(), cases.targets  # the targets stay here
            with torch.inference_mode():
                scores = recommender.score(batch)
            width = scores.shape[1] if getattr(scores, "ndim", 0) == 2 else None
            if n_items is None:
                n_items = width
            if width != n_items or scores.shape[0] != len(targets):
                raise ScoreError(
                    f"{name}: score() must return float[{len(targets)}, {n_items}] (batch x items), "
                    f"got shape {tuple(getattr(scores, 'shape', ()))}"
                )
            greater[index], equal[index] = _tie_counts(scores, targets, name)
            bar.update(len(targets))
    lengths = sessions.prefix_lengths()
    ranks = ranks_from_counts(greater, equal, ties)
    return EvaluationResult(
        greater=greater,
        equal=equal,
        prefix_lengths=lengths,
        ties=ties,
        metrics=metrics(ranks, ks),
        per_length=hits_by_length(ranks, lengths),
    )
