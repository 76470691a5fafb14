"""GRU4Rec's item index and its session-parallel mini-batches (see the package docstring)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

#: Score of items without training clicks: below every score a trained model gives.
UNSEEN_SCORE = -1e30

FINAL_ACTIVATIONS = ("linear", "tanh", "elu")




# ----------------------------------------------------------------------------- items


def item_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training items and the map from item index to their compact index.

    Args:
        counts: int64[n_items] training clicks per item.

    Returns:
        (known, compact): int64[n_known] item indices with clicks, and int64[n_items] the
        compact index of each item (-1 for items without training clicks).
    """
    known = np.flatnonzero(counts > 0)
    compact = np.full(len(counts), -1, dtype=np.int64)
    compact[known] = np.arange(len(known))
    return known, compact


# ----------------------------------------------------------------- session-parallel batching


@dataclass(frozen=True)
class SessionParallelSchedule:
    """One epoch of session-parallel mini-batches (ICLR 2016, Sec. 3.1.1, Figure 2).

    Step ``t`` feeds, in slot ``k``, the click at ``position[t, k]`` of the flat click array
    and asks for the next click (``position + 1``). Slots are numbered so that the slots still
    busy at step ``t`` are exactly ``0 .. width[t] - 1``: a slot retires when no session is
    left for it, and the busiest come first.

    Attributes:
        position: int64[T, B] index into ``Sessions.items`` of each input click; -1 where the
            slot has retired.
        reset: bool[T, B] True where the slot starts a new session at this step, i.e. where its
            hidden state must be zero before the step.
        width: int64[T] number of busy slots at each step (non-increasing).
    """

    position: np.ndarray
    reset: np.ndarray
    width: np.ndarray

    def __len__(self) -> int:
        return len(self.width)


def session_parallel_schedule(lengths: np.ndarray, batch_size: int) -> SessionParallelSchedule:
    """Plan session-parallel mini-batches over sessions of the given lengths, in their order.

    The first ``batch_size`` sessions start in slots 0.. at step 0; whenever slots free up, the
    next sessions go to them in slot order, exactly as the reference's loop hands them out.
    A session of L clicks occupies its slot for L - 1 steps (one per prediction).

    Args:
        lengths: int64[n] clicks per session (each >= 2), in training order.
        batch_size: Number of slots B.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 2).any():
        raise ValueError("session_parallel_schedule: every session needs at least 2 clicks")
    n, slots = len(lengths), min(batch_size, len(lengths))
    start = np.empty(n, dtype=np.int64)
    slot = np.empty(n, dtype=np.int64)
    # (step at which the slot is free, slot): popping gives the earliest, ties by slot number
    free = [(0, k) for k in range(slots)]
    for s, steps in enumerate((lengths - 1).tolist()):
        t, k = heapq.heappop(free)
        start[s], slot[s] = t, k
        heapq.heappush(free, (t + steps, k))
    finish = np.zeros(slots, dtype=np.int64)
    np.maximum.at(finish, slot, start + lengths - 1)
    # renumber slots, busiest first, so that the busy slots of every step are a prefix
    order = np.argsort(-finish, kind="stable")
    rank = np.empty(slots, dtype=np.int64)
    rank[order] = np.arange(slots)
    slot = rank[slot]
    n_steps = int(finish.max()) if n else 0
    position = np.full((n_steps, slots), -1, dtype=np.int64)
    reset = np.zeros((n_steps, slots), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    steps_per = lengths - 1
    first = np.repeat(np.cumsum(steps_per) - steps_per, steps_per)
    within = np.arange(int(steps_per.sum()), dtype=np.int64) - first
    position[np.repeat(start, steps_per) + within, np.repeat(slot, steps_per)] = (
        np.repeat(offsets[:-1], steps_per) + within
    )
    reset[start, slot] = True
    width = (finish[order][None, :] > np.arange(n_steps)[:, None]).sum(1)
    return SessionParallelSchedule(position, reset, width)


