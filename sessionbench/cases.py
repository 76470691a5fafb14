"""The training and validation cases of the models trained on every prefix (NARM, STAMP,
SR-GNN, ...): prefixes cut to ``max_length`` clicks, held as tensors, and the hold-out that
selection scores."""

from __future__ import annotations

import numpy as np
import torch

from sessionbench.data import Sessions
from sessionbench.recommender import PAD, PrefixBatch
from sessionbench.training import holdout_recent

__all__ = ["VALIDATIONS", "Cases", "holdout", "truncate"]

#: How the validation cases are held out: the most recent whole sessions, or random prefixes (the code).
VALIDATIONS = ("recent", "random")


def truncate(batch: PrefixBatch, max_length: int | None, keep: str = "last") -> PrefixBatch:
    """Cut prefixes longer than ``max_length`` to their last (or first) ``max_length`` clicks.

    Args:
        batch: Left-aligned prefixes, ``PAD`` after each row's length.
        max_length: Clicks kept per prefix; None keeps every click.
        keep: "last" or "first".

    Returns:
        A batch of width <= ``max_length`` with the same targets.
    """
    if max_length is None:
        return batch
    kept = np.minimum(batch.lengths, max_length)
    if keep == "first":
        items = batch.items[:, :max_length].copy()
        items[np.arange(items.shape[1])[None, :] >= kept[:, None]] = PAD
        return PrefixBatch(items, kept, batch.targets)
    width = int(kept.max()) if len(kept) else 0
    cols = (batch.lengths - kept)[:, None] + np.arange(width)[None, :]
    real = np.arange(width)[None, :] < kept[:, None]
    items = np.where(real, np.take_along_axis(batch.items, np.minimum(cols, batch.items.shape[1] - 1), 1), PAD)
    return PrefixBatch(items, kept, batch.targets)


class Cases:
    """Training or validation prefixes held as tensors, truncated once: items int64[N, W]
    (embedding rows, 0 = padding), lengths int64[N], targets int64[N] (item indices)."""

    def __init__(self, sessions: Sessions, session: np.ndarray, length: np.ndarray, max_length: int | None, keep: str) -> None:
        self.sessions = sessions  # the sessions the cases come from (a model's global graph is built on them)
        parts = [
            truncate(sessions.gather_prefixes(session[lo : lo + 65536], length[lo : lo + 65536]), max_length, keep)
            for lo in range(0, len(session), 65536)
        ]
        width = max(p.items.shape[1] for p in parts)
        items = np.zeros((len(session), width), dtype=np.int64)
        row = 0
        for p in parts:
            items[row : row + len(p), : p.items.shape[1]] = p.items + 1  # PAD (-1) -> row 0
            row += len(p)
        self.items = torch.from_numpy(items)
        self.lengths = torch.from_numpy(np.concatenate([p.lengths for p in parts]))
        self.targets = torch.from_numpy(np.concatenate([p.targets for p in parts]))

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(items, lengths, targets) of the cases at ``index``, trimmed to their longest row."""
        lengths = self.lengths[index]
        items = self.items[index, : int(lengths.max())]
        return items.to(device), lengths.to(device), self.targets[index].to(device)


def holdout(
    sessions: Sessions, validation: str, fraction: float, rng: np.random.Generator, max_length: int | None, keep: str
) -> tuple[Cases, Cases]:
    """(training, validation) cases of ``sessions``: ``validation="recent"`` holds out the most
    recent whole sessions with ``fraction`` of the cases (:func:`sessionbench.training.holdout_recent`),
    ``"random"`` a random ``fraction`` of the prefixes drawn with ``rng`` (the authors' code;
    prefixes of one session then fall on both sides)."""
    if validation == "recent":
        parts = holdout_recent(sessions, fraction)
        return tuple(Cases(s, *s.prefix_cases(), max_length, keep) for s in parts)
    session, length = sessions.prefix_cases()
    order = rng.permutation(len(session))
    n_valid = max(1, round(fraction * len(session)))
    train, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
    return Cases(sessions, session[train], length[train], max_length, keep), Cases(sessions, session[valid], length[valid], max_length, keep)
