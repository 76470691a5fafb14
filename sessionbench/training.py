"""What every torch model shares: device, seeding, batches of training prefixes, the held-out
validation data, and the epoch loop with early stopping.

A model supplies only "run one epoch" (its batch step — forward, loss, backward, optimiser
step — stays in the model's own file) and, if it validates, "score a batch" through its
:meth:`~sessionbench.recommender.Recommender.score`. :func:`train_epochs` owns the epochs, the
progress bar, logging, early stopping and restoring the best epoch's weights.

Seeding follows SPEC 7: :func:`generators` derives a numpy and a torch generator from the
seed, which the model passes down; nothing reads or sets global RNG state.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionbench.data import Sessions
from sessionbench.recommender import PrefixBatch

__all__ = [
    "EpochLog",
    "generators",
    "holdout_recent",
    "prefix_batches",
    "resolve_device",
    "train_epochs",
]

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: torch sees no CUDA device; use 'cpu'")
    return torch.device(device)


def generators(seed: int, device: torch.device | str = "cpu") -> tuple[np.random.Generator, torch.Generator]:
    """A numpy and a torch generator derived from ``seed`` (independent streams)."""
    seq = np.random.SeedSequence(seed)
    np_seed, torch_seed = seq.spawn(2)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(torch_seed.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
    return np.random.default_rng(np_seed), gen


def holdout_recent(sessions: Sessions, fraction: float = 0.1) -> tuple[Sessions, Sessions]:
    """Split sessions (sorted by time) into (train, validation): the most recent whole sessions
    holding ``fraction`` of the prefix cases go to validation, so that no session's prefixes
    fall on both sides."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    cases_from_end = np.cumsum((sessions.lengths - 1)[::-1])
    n_valid = int(np.searchsorted(cases_from_end, fraction * sessions.n_prefixes)) + 1
    n_valid = min(max(n_valid, 1), len(sessions) - 1)
    cut = len(sessions) - n_valid
    return sessions.select(np.arange(cut)), sessions.select(np.arange(cut, len(sessions)))


def prefix_batches(
    sessions: Sessions,
    batch_size: int,
    rng: np.random.Generator | None = None,
    max_length: int | None = None,
    keep: str = "last",
) -> Iterator[PrefixBatch]:
    """Every (prefix -> next click) case of ``sessions``, shuffled when ``rng`` is given.

    Args:
        max_length: Cut longer prefixes to this many clicks.
        keep: "last" keeps the last ``max_length`` clicks; "first" keeps the first ones (the
            NARM reference code's choice).
    """
    session, length = sessions.prefix_cases()
    order = rng.permutation(len(session)) if rng is not None else np.arange(len(session))
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        if keep == "first" and max_length is not None:
            # the first clicks of a long prefix, with the prefix's real target
            batch = sessions.gather_prefixes(session[idx], length[idx])
            cut = np.minimum(batch.lengths, max_length)
            items = batch.items[:, :max_length].copy()
            items[np.arange(items.shape[1])[None, :] >= cut[:, None]] = -1
            yield PrefixBatch(items=items, lengths=cut, targets=batch.targets)
        else:
            yield sessions.gather_prefixes(session[idx], length[idx], max_length)


@dataclass
class EpochLog:
    """One epoch: mean training loss, wall seconds, validation score (None if not validated)."""

    epoch: int
    loss: float
    seconds: float
    validation: float | None = None


def train_epochs(
    run_epoch: Callable[[int], float],
    *,
    epochs: int,
    module: torch.nn.Module | None = None,
    validate: Callable[[], float] | None = None,
    patience: int | None = None,
    progress: bool = True,
    desc: str = "train",
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> list[EpochLog]:
    """Run up to ``epochs`` epochs, keeping the best one when validating.

    Args:
        run_epoch: Trains one epoch (given its 0-based number) and returns the mean loss.
        module: Whose weights are snapshotted at the best validation score and restored at the
            end.
        validate: Returns the validation score (higher is better), called after each epoch.
        patience: Stop after this many epochs without improvement (None: never stop early).
        on_epoch: Called after each epoch with its log (tests, custom logging).

    Returns:
        The log of every epoch run.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    history: list[EpochLog] = []
    best, best_state, stale = -math.inf, None, 0
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        loss = float(run_epoch(epoch))
        if not math.isfinite(loss):
            raise FloatingPointError(f"{desc}: training loss is {loss} in epoch {epoch + 1}; lower the learning rate")
        entry = EpochLog(epoch, loss, time.perf_counter() - started)
        if validate is not None:
            entry.validation = float(validate())
            if entry.validation > best:
                best, stale = entry.validation, 0
                if module is not None:
                    best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
        history.append(entry)
        bar.set_postfix(loss=f"{loss:.4f}", valid="" if entry.validation is None else f"{entry.validation:.4f}")
        log.debug("%s epoch %d: loss %.4f, %.1f s, validation %s", desc, epoch + 1, loss, entry.seconds, entry.validation)
        if on_epoch is not None:
            on_epoch(entry)
        if patience is not None and stale >= patience:
            log.info("%s: no improvement for %d epochs, stopping after epoch %d", desc, patience, epoch + 1)
            break
    if best_state is not None and module is not None:
        module.load_state_dict(best_state)
    return history
