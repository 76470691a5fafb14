"""What every torch model shares: device, seeding, batches of training prefixes, the held-out
validation data, and the epoch loop with early stopping.

A model supplies only "run one epoch" (its batch step — forward, loss, backward, optimiser
step — stays in the model's own file) and, if it validates, "score a batch" through its
:meth:`~sessionbench.recommender.Recommender.score`. :func:`train_epochs` owns the epochs, the
progress bar, logging, early stopping and restoring the best epoch's weights, and, given a
:class:`Checkpoint`, saving all of that after every epoch so that an interrupted training
resumes where it stopped and ends exactly as an uninterrupted one would.

Seeding follows SPEC 7: :func:`generators` derives a numpy and a torch generator from the
seed, which the model passes down; nothing reads or sets global RNG state.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sessionbench.checkpoints import (  # re-exported: models import them from here
    _LOOP,
    Checkpoint,
    checkpoint_files,
    checkpoint_identity,
    fit_checkpoint,
    phase_checkpoint,
    read_checkpoint_file,
    resumed,
    write_checkpoint_file,
)
from sessionbench.data import Sessions
from sessionbench.recommender import PrefixBatch

__all__ = [
    "Checkpoint",
    "adam_options",
    "EpochLog",
    "checkpoint_files",
    "checkpoint_identity",
    "dropout",
    "fit_checkpoint",
    "generators",
    "holdout_recent",
    "phase_checkpoint",
    "prefix_batches",
    "read_checkpoint_file",
    "resolve_device",
    "resumed",
    "selected_epochs",
    "selection_record",
    "train_epochs",
    "weights_generator",
    "write_checkpoint_file",
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


def adam_options(device: torch.device | str) -> dict[str, Any]:
    """Keyword arguments for ``torch.optim.Adam`` on ``device``: the fused kernel where torch
    has one (CPU and CUDA), one pass over each tensor instead of several (measured in
    ``benchmarks/narm_speed.py``)."""
    return {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}


def weights_generator(gen: torch.Generator) -> torch.Generator:
    """The generator a model draws its initial weights from: ``gen`` itself on the CPU; for a
    generator on a GPU, a CPU generator seeded with its seed.

    Weights are made on the CPU and then moved (``module.to(device)``), and torch refuses to
    fill a CPU tensor from a CUDA generator; this is what let the GRU4Rec models fail on every
    GPU. On the CPU the weights stay what they were.
    """
    if gen.device.type == "cpu":
        return gen
    return torch.Generator().manual_seed(gen.initial_seed())


def dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout whose mask is drawn from ``generator`` (``F.dropout`` takes none)."""
    if p == 0.0:
        return x
    # rand >= p is 1.0 with probability 1 - p (faster on CPU than bernoulli_ with a generator)
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).ge_(p)
    return x * keep.mul_(1.0 / (1.0 - p))


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
    """One epoch: mean training loss, wall seconds, validation score (None if not validated),
    and any other metrics the validation returned beside its score."""

    epoch: int
    loss: float
    seconds: float
    validation: float | None = None
    metrics: dict[str, float] | None = None


def selected_epochs(history: list[EpochLog]) -> int:
    """How many epochs the fair protocol refits for: the 1-based number of the epoch with the
    best validation score (the first of equal ones, the epoch :func:`train_epochs` keeps).

    Raises:
        ValueError: no epoch of ``history`` was validated.
    """
    scores = [h.validation for h in history]
    if not scores or any(v is None for v in scores):
        raise ValueError("selected_epochs: every epoch of the selection run must have a validation score")
    return int(np.argmax(scores)) + 1


def selection_record(history: list[EpochLog], metric: str, on: str) -> dict[str, Any]:
    """What a result records of a selection run: the metric, the split it was scored on, the
    epochs selected and run, the validation curve (one score per epoch) and its seconds."""
    return {
        "metric": metric,
        "on": on,
        "epochs": selected_epochs(history),
        "epochs_run": len(history),
        "curve": [round(float(h.validation), 6) for h in history],
        "seconds": round(sum(h.seconds for h in history), 3),
    }


def train_epochs(
    run_epoch: Callable[[int], float],
    *,
    epochs: int,
    module: torch.nn.Module | None = None,
    validate: Callable[[], float | tuple[float, dict[str, float]]] | None = None,
    patience: int | None = None,
    progress: bool = True,
    desc: str = "train",
    on_epoch: Callable[[EpochLog], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[EpochLog]:
    """Run up to ``epochs`` epochs, keeping the best one when validating.

    Args:
        run_epoch: Trains one epoch (given its 0-based number) and returns the mean loss.
        module: Whose weights are snapshotted at the best validation score and restored at the
            end.
        validate: Returns the validation score (higher is better), called after each epoch; or
            (score, {metric: value}) to keep other metrics in the epoch's log beside it.
        patience: Stop after this many epochs without improvement (None: never stop early).
        on_epoch: Called after each epoch with its log (tests, custom logging).
        checkpoint: Save the training after every epoch there, and resume from it if it holds
            this training (see :class:`Checkpoint`). ``run_epoch`` must draw its randomness
            only from generators in ``checkpoint.state`` for the resume to be exact.

    Returns:
        The log of every epoch run (those restored from a checkpoint first).

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    history: list[EpochLog] = []
    best, best_state, stale, stopped, seconds = -math.inf, None, 0, False, 0.0
    loop = checkpoint.load(module) if checkpoint is not None else None
    if loop is not None:
        history = [EpochLog(**entry) for entry in loop["history"]]
        best, best_state, stale, stopped, seconds = (loop[k] for k in _LOOP)
        checkpoint.resumed_epochs, checkpoint.resumed_seconds = len(history), seconds
        log.info("%s: resuming after epoch %d of %d from %s", desc, len(history), epochs, checkpoint.path)
    first = epochs if stopped else len(history)
    bar = tqdm(range(first, epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        loss = float(run_epoch(epoch))
        if not math.isfinite(loss):
            raise FloatingPointError(f"{desc}: training loss is {loss} in epoch {epoch + 1}; lower the learning rate")
        entry = EpochLog(epoch, loss, time.perf_counter() - started)
        if validate is not None:
            score = validate()
            if isinstance(score, tuple):  # (score, other metrics)
                score, entry.metrics = score[0], {k: float(v) for k, v in score[1].items()}
            entry.validation = float(score)
            if entry.validation > best:
                best, stale = entry.validation, 0
                if module is not None:
                    best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
        history.append(entry)
        bar.set_postfix(loss=f"{loss:.4f}", valid="" if entry.validation is None else f"{entry.validation:.4f}")
        log.debug("%s epoch %d: loss %.4f, %.1f s, validation %s", desc, epoch + 1, loss, entry.seconds, entry.validation)
        stopped = patience is not None and stale >= patience
        seconds += time.perf_counter() - started
        if checkpoint is not None:
            state = dict(zip(_LOOP, (best, best_state, stale, stopped, seconds)))
            checkpoint.save(module, {"history": [asdict(h) for h in history], **state})
        if on_epoch is not None:
            on_epoch(entry)
        if stopped:
            log.info("%s: no improvement for %d epochs, stopping after epoch %d", desc, patience, epoch + 1)
            break
    if best_state is not None and module is not None:
        module.load_state_dict(best_state)
    return history
