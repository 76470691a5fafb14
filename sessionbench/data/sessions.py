"""Ragged session storage (`Sessions`), the train/test `Split`, and prefix batches.

Sessions are kept flat: one int32 array of every click and an int64 array of offsets, never a
list of Python lists (YOOCHOOSE 1/4 has ~6M training sequences). Test cases are gathered from
these arrays on the fly, a batch at a time.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sessionbench.recommender import PAD, PrefixBatch

__all__ = ["Sessions", "Split", "ragged_ranges"]


def ragged_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n): int64[sum(lengths)]."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    # Each output position is its range's start plus its offset inside the range.
    run_starts = np.cumsum(lengths) - lengths
    offsets = np.arange(total, dtype=np.int64) - np.repeat(run_starts, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + offsets


@dataclass(frozen=True)
class Sessions:
    """A set of sessions stored ragged and flat.

    Attributes:
        items: int32[n_clicks]. Item indices of every click, session after session.
        offsets: int64[n + 1]. Session ``s`` is ``items[offsets[s]:offsets[s + 1]]``.
        times: float64[n]. Session time in unix seconds (the time of its last click), or its
            position where the source has no times.
        ids: int64[n]. The session's id in the source, or its position where there is none.
    """

    items: np.ndarray
    offsets: np.ndarray
    times: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0:
            raise ValueError("Sessions.offsets must be int64[n + 1] starting at 0")
        if self.offsets[-1] != len(self.items):
            raise ValueError(
                f"Sessions.offsets ends at {self.offsets[-1]} but there are {len(self.items)} clicks"
            )
        n = len(self.offsets) - 1
        if len(self.times) != n or len(self.ids) != n:
            raise ValueError(f"Sessions: {n} sessions but {len(self.times)} times, {len(self.ids)} ids")

    @classmethod
    def from_lists(
        cls,
        sessions: Sequence[Sequence[int]],
        times: Sequence[float] | None = None,
        ids: Sequence[int] | None = None,
    ) -> Sessions:
        """Build from a list of item-index lists (for small data and tests)."""
        lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64, count=len(sessions))
        items = np.fromiter((i for s in sessions for i in s), dtype=np.int32, count=int(lengths.sum()))
        n = len(sessions)
        return cls(
            items=items,
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            times=np.arange(n, dtype=np.float64) if times is None else np.asarray(times, np.float64),
            ids=np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, s: int) -> np.ndarray:
        return self.items[self.offsets[s] : self.offsets[s + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """int64[n]: clicks per session."""
        return np.diff(self.offsets)

    @property
    def n_clicks(self) -> int:
        return len(self.items)

    @property
    def n_prefixes(self) -> int:
        """Number of (prefix -> next click) cases: sum of (length - 1)."""
        return int(self.n_clicks - len(self))

    def to_lists(self) -> list[list[int]]:
        """The sessions as Python lists (small data and tests only)."""
        return [self[s].tolist() for s in range(len(self))]

    def select(self, index: np.ndarray) -> Sessions:
        """The sessions at ``index`` (int positions or a bool mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        lengths = self.lengths[index]
        return Sessions(
            items=self.items[ragged_ranges(self.offsets[index], lengths)],
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            times=self.times[index],
            ids=self.ids[index],
        )

    def prefix_cases(self) -> tuple[np.ndarray, np.ndarray]:
        """Every test case as (session position, prefix length), session by session, shortest
        prefix first: int64[n_prefixes] each."""
        n_cases = self.lengths - 1
        session = np.repeat(np.arange(len(self), dtype=np.int64), n_cases)
        length = ragged_ranges(np.ones(len(self), dtype=np.int64), n_cases)
        return session, length

    def prefix_lengths(self) -> np.ndarray:
        """int64[n_prefixes]: the length of each case's prefix, in :meth:`prefix_cases` order."""
        return self.prefix_cases()[1]

    def gather_prefixes(
        self, session: np.ndarray, length: np.ndarray, max_length: int | None = None
    ) -> PrefixBatch:
        """One batch for the given cases; with ``max_length`` only the last clicks are kept."""
        length = np.asarray(length, dtype=np.int64)
        kept = length if max_length is None else np.minimum(length, max_length)
        start = self.offsets[session] + length - kept
        width = int(kept.max()) if len(kept) else 0
        cols = np.arange(width, dtype=np.int64)
        real = cols[None, :] < kept[:, None]
        index = np.where(real, start[:, None] + cols[None, :], 0)
        items = np.where(real, self.items[index], PAD).astype(np.int64)
        targets = self.items[self.offsets[session] + length].astype(np.int64)
        return PrefixBatch(items=items, lengths=kept, targets=targets)

    def prefix_batches(
        self, batch_size: int = 1024, max_length: int | None = None
    ) -> Iterator[PrefixBatch]:
        """Every (prefix -> next click) case, in :meth:`prefix_cases` order, ``batch_size`` at a
        time. ``max_length`` keeps only the last clicks of longer prefixes."""
        session, length = self.prefix_cases()
        for lo in range(0, len(session), batch_size):
            yield self.gather_prefixes(session[lo : lo + batch_size], length[lo : lo + batch_size], max_length)


@dataclass
class Split:
    """A dataset after the protocol: training sessions, test sessions and the item index.

    Attributes:
        name: Dataset name, e.g. "diginetica".
        train: Training sessions, sorted by time. For YOOCHOOSE fractions, only the fraction.
        test: Test sessions, sorted by time; every prefix is a test case.
        n_items: Size of the item index; scores cover items 0..n_items-1.
        item_ids: The original item id of each index (int64, or str for string ids).
        info: Where the data came from and how it was processed (source, order, protocol
            parameters, counts after each step, notes for the tables).
        full_train: The whole training data when ``train`` is a most-recent fraction of it
            (YOOCHOOSE 1/64 and 1/4 from raw clicks), else None.
    """

    name: str
    train: Sessions
    test: Sessions
    n_items: int
    item_ids: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    full_train: Sessions | None = None
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of what the protocol produced: every session's items, offsets and times
        (train, test and the full training data), the item index and the declared click order.
        Two splits with the same fingerprint are the same data, wherever their files lay; a
        result belongs to the split of its fingerprint."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for part in (self.train, self.test, self.full_train):
                digest.update(b"part" if part is not None else b"none")
                if part is not None:
                    for array, dtype in ((part.items, np.int32), (part.offsets, np.int64), (part.times, np.float64)):
                        digest.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
            ids = np.asarray(self.item_ids)
            digest.update(ids.astype(np.int64).tobytes() if ids.dtype.kind in "iu" else "\0".join(map(str, ids)).encode())
            digest.update(f"{self.n_items}|{self.info.get('order')}".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def training_view(self) -> Split:
        """This split with its test sessions removed: what a model's ``fit`` is given, so that
        no model can learn from the answers it is graded on."""
        empty = Sessions(np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64))
        return Split(self.name, self.train, empty, self.n_items, self.item_ids, dict(self.info), self.full_train)

    def stats(self) -> dict[str, Any]:
        """Table 1 of the paper, counted the way it counts.

        ``clicks`` is every click of the train and test sessions; ``train_sessions`` and
        ``test_sessions`` count sequences after prefix expansion; ``items`` counts the distinct
        items of the training data used (for a YOOCHOOSE fraction, those occurring in the
        fraction); ``avg_length`` is the mean of (prefix length + 1) over all train and test
        sequences, truncated (not rounded) to two decimals: the paper prints DIGINETICA's
        5.1251 as 5.12 (every other DIGINETICA count matches it exactly).
        """
        lengths = np.concatenate([self.train.lengths, self.test.lengths])
        n_sequences = int((lengths - 1).sum())
        # a session of n clicks yields prefixes 1..n-1, whose (length + 1) sum to n(n+1)/2 - 1
        total_length = float((lengths * (lengths + 1) // 2 - 1).sum())
        return {
            "clicks": int(self.train.n_clicks + self.test.n_clicks),
            "train_sessions": self.train.n_prefixes,
            "test_sessions": self.test.n_prefixes,
            "items": int(len(np.unique(self.train.items))),
            "avg_length": math.floor(100 * total_length / n_sequences) / 100 if n_sequences else 0.0,
        }
