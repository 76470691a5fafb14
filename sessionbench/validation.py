"""The validation split that settings are selected on, carved from the training sessions by
time, and the fixed sample of its sessions a tuning trial scores.

Selection (tuned settings, and the fair protocol's early stopping and epoch counts) never looks at
the test sessions: it fits on the older training sessions and scores the most recent ones.
"""

from __future__ import annotations

import numpy as np

from sessionbench.data import Sessions, Split
from sessionbench.training import holdout_recent

__all__ = ["VALIDATION_FRACTION", "validation_sample", "validation_split"]

#: Share of the training prefix cases, in the most recent whole sessions, that selection scores.
VALIDATION_FRACTION = 0.1


def validation_split(split: Split, fraction: float = VALIDATION_FRACTION) -> Split:
    """The split that settings are selected on, carved from ``split``'s training sessions by time.

    Its ``train`` holds the older training sessions, its ``test`` the most recent whole sessions
    holding ``fraction`` of the training prefix cases (:func:`sessionbench.training.holdout_recent`),
    so no session is on both sides. For a YOOCHOOSE fraction it is carved from the fraction, and
    the full training data is left out (``full_train`` None: it holds the validation sessions).
    ``split.test`` is not used.

    Returns:
        A Split named ``<name>-validation`` with its own fingerprint; ``info["validation"]`` names
        the split it was carved from and the fraction.

    Raises:
        ValueError: ``fraction`` not in (0, 1), or fewer than two training sessions.
    """
    if len(split.train) < 2:
        raise ValueError(f"{split.name}: a validation split needs two training sessions or more, found {len(split.train)}")
    train, valid = holdout_recent(split.train, fraction)
    info = {**split.info, "validation": {"of": split.name, "fingerprint": split.fingerprint, "fraction": fraction}}
    return Split(f"{split.name}-validation", train, valid, split.n_items, split.item_ids, info, None)


def validation_sample(sessions: Sessions, max_cases: int | None, *, seed: int, key: str) -> Sessions:
    """Whole sessions drawn at random holding about ``max_cases`` prefix cases (the first sessions
    of a seeded permutation to reach it, at most one session more), kept in their time order;
    all of ``sessions`` when ``max_cases`` is None or not below their number of cases.

    Args:
        seed: The tuning seed.
        key: A hex digest naming the sessions (the tuner passes the validation split's
            fingerprint): the draw depends on ``seed`` and ``key`` alone, not on the method.

    Raises:
        ValueError: ``max_cases`` below 1.
    """
    if max_cases is None or max_cases >= sessions.n_prefixes:
        return sessions
    if max_cases < 1:
        raise ValueError(f"max_cases must be >= 1 (or None for every case), got {max_cases}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(key[:16], 16)]))
    order = rng.permutation(len(sessions))
    reached = np.cumsum(sessions.lengths[order] - 1)
    n = int(np.searchsorted(reached, max_cases)) + 1
    return sessions.select(np.sort(order[:n]))
