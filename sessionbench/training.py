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
import hashlib
import io
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import sessionbench
from sessionbench.data import Sessions, Split
from sessionbench.files import atomic_write, set_aside
from sessionbench.provenance import code_identity
from sessionbench.recommender import PrefixBatch, Recommender

__all__ = [
    "Checkpoint",
    "adam_options",
    "EpochLog",
    "checkpoint_identity",
    "fit_checkpoint",
    "generators",
    "holdout_recent",
    "prefix_batches",
    "read_checkpoint_file",
    "resolve_device",
    "resumed",
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


@dataclass
class Checkpoint:
    """Where :func:`train_epochs` keeps a resumable copy of a training, and what it holds.

    After every epoch the loop writes (atomically) the module's weights, the epoch logs, the
    best validation score and its weights, the early-stopping count, and the state of every
    object in ``state`` (optimisers, numpy and torch generators, other modules). A later call
    with an equal ``identity`` restores all of them and runs the remaining epochs: the result is
    the one an uninterrupted training gives. A file whose identity differs (other data, other
    hyperparameters, another seed or device) is replaced, with a warning.

    Args:
        path: The checkpoint file (its folder is created).
        identity: What must match for a resume (JSON-like: str, int, float, lists, dicts).
        state: Named objects whose state is saved beside the module's: ``torch.Generator``,
            ``numpy.random.Generator``, or anything with ``state_dict()`` and
            ``load_state_dict()`` (modules, optimisers, a model's own samplers).

    After :func:`train_epochs` returns, ``resumed_epochs`` and ``resumed_seconds`` say how many
    epochs came from the file and how many seconds of training (epochs and validation) they took.
    """

    path: Path
    identity: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    resumed_epochs: int = 0
    resumed_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def save(self, module: torch.nn.Module | None, loop: dict[str, Any]) -> None:
        """Write the objects' state and the loop's (``history``, ``best``, ...) to ``path``,
        behind a sha256 of the content. A checkpoint that cannot be written (a full disk) costs
        only the resume: a warning names the file and the training goes on."""
        objects = {name: _state_of(obj) for name, obj in self.state.items()}
        if module is not None:
            objects["__module__"] = module.state_dict()
        try:
            write_checkpoint_file(self.path, {"identity": self.identity, "loop": loop, "objects": objects})
        except OSError as e:
            log.warning("could not write the checkpoint %s (%s); training goes on, but an interruption "
                        "now restarts it from an earlier epoch", self.path, e.strerror or e)

    def load(self, module: torch.nn.Module | None) -> dict[str, Any] | None:
        """Restore the objects from ``path`` and return the loop's state; None to start afresh.

        Raises:
            ValueError: the file holds this training but its state does not fit the objects
                (then some may be restored already, so a fresh start would not be one).
        """
        if not self.path.is_file():
            return None
        try:
            saved = read_checkpoint_file(self.path)
            objects, loop = saved["objects"], saved["loop"]
            missing = {*self.state, *(["__module__"] if module is not None else [])} - set(objects)
            missing |= {"history", *_LOOP} - set(loop)
        except Exception as e:  # a truncated, damaged or foreign file must not stop a fresh run
            moved = set_aside(self.path)
            kept = f"set aside as {moved.name}" if moved is not None else "already set aside"
            log.warning("checkpoint %s is unreadable (%s: %s); %s, training from the start", self.path, type(e).__name__, e, kept)
            return None
        if saved.get("identity") != self.identity or missing:
            why = f"it lacks {sorted(missing)}" if missing else _difference(saved.get("identity"), self.identity)
            log.warning("checkpoint %s is not this training's (%s); training from the start and replacing it", self.path, why)
            return None
        try:
            if module is not None:
                module.load_state_dict(objects["__module__"])
            for name, obj in self.state.items():
                _restore(obj, objects[name])
        except Exception as e:
            raise ValueError(
                f"checkpoint {self.path} matches this training but cannot be restored ({type(e).__name__}: {e}); "
                "delete it (or run with --force) to train from the start"
            ) from e
        return loop


def resumed(checkpoint: Checkpoint | None) -> dict[str, float] | None:
    """``{"epochs", "seconds"}`` that a training took from ``checkpoint``, None if it took
    none: what a model sets as ``resumed_`` for the harness to record."""
    if checkpoint is None or not checkpoint.resumed_epochs:
        return None
    return {"epochs": checkpoint.resumed_epochs, "seconds": round(checkpoint.resumed_seconds, 3)}


_LOOP = ("best", "best_state", "stale", "stopped", "seconds")  # saved beside the epoch logs
_MAGIC = b"sessionbench-checkpoint sha256="


def write_checkpoint_file(path: Path, contents: dict[str, Any]) -> None:
    """Write ``contents`` (torch-serialisable) atomically, behind a line with its sha256.

    Raises:
        OSError: the file cannot be written (a full disk, no permission).
    """
    buffer = io.BytesIO()
    torch.save(contents, buffer)
    payload = buffer.getvalue()
    header = _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    atomic_write(Path(path), lambda f: (f.write(header), f.write(payload)))


def read_checkpoint_file(path: Path) -> dict[str, Any]:
    """The contents of a checkpoint file, its checksum verified; loaded with torch's
    ``weights_only`` (tensors, numbers, strings and containers, never arbitrary objects).

    Raises:
        ValueError: a missing or wrong checksum (a truncated or damaged file).
    """
    payload = _verified_payload(Path(path).read_bytes())
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def _verified_payload(data: bytes) -> bytes:
    """The torch payload of a checkpoint file, after its checksum line.

    Raises:
        ValueError: no checksum line, or one the content does not match (a truncated file,
            flipped bytes).
    """
    header, newline, payload = data.partition(b"\n")
    if not newline or not header.startswith(_MAGIC):
        raise ValueError("no sessionbench checksum line at its start")
    expected = header[len(_MAGIC):].decode("ascii", errors="replace")
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ValueError(f"its content hashes to sha256 {actual[:12]}..., not the recorded {expected[:12]}... (damaged or truncated)")
    return payload


def checkpoint_identity(model: Recommender, split: Split, seed: int, device: torch.device | str) -> dict[str, Any]:
    """What a checkpoint of ``model``'s training on ``split`` must match to be resumed: the
    class, its hyperparameters, the seed, the device type, the training data (a hash of its
    arrays: :attr:`Split.fingerprint`, which a fit given the harness's training view takes
    without the test sessions) and the code version (:func:`sessionbench.provenance.code_identity`)."""
    cls = type(model)
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "params": model.get_params(),
        "seed": int(seed),
        "device": torch.device(device).type,
        "data": f"{split.name}, {split.n_items} items, {split.fingerprint}",
        "version": sessionbench.__version__,
        "code": code_identity(),
        # what a model's precision="auto" resolved to: a bf16 training resumes only as bf16
        "precision": getattr(model, "precision_", None),
    }


def fit_checkpoint(
    path: str | Path | None,
    model: Recommender,
    split: Split,
    seed: int,
    device: torch.device | str,
    state: dict[str, Any],
) -> Checkpoint | None:
    """The :class:`Checkpoint` of ``model``'s fit on ``split`` at ``path``, identified by
    :func:`checkpoint_identity`; None when ``path`` is None (no checkpoint wanted)."""
    if path is None:
        return None
    return Checkpoint(Path(path), checkpoint_identity(model, split, seed, device), state)


def _state_of(obj: Any) -> Any:
    if isinstance(obj, np.random.Generator):
        return obj.bit_generator.state
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        return obj.state_dict()
    raise TypeError(f"Checkpoint.state: cannot save a {type(obj).__name__} (it has no state_dict/load_state_dict)")


def _restore(obj: Any, state: Any) -> None:
    if isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    elif isinstance(obj, torch.Generator):
        obj.set_state(state)
    else:
        obj.load_state_dict(state)


def _difference(saved: Any, wanted: dict[str, Any]) -> str:
    if not isinstance(saved, dict):
        return "no identity"
    keys = sorted(k for k in saved.keys() | wanted.keys() if saved.get(k) != wanted.get(k))
    return ", ".join(f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} here" for k in keys[:3])


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
    checkpoint: Checkpoint | None = None,
) -> list[EpochLog]:
    """Run up to ``epochs`` epochs, keeping the best one when validating.

    Args:
        run_epoch: Trains one epoch (given its 0-based number) and returns the mean loss.
        module: Whose weights are snapshotted at the best validation score and restored at the
            end.
        validate: Returns the validation score (higher is better), called after each epoch.
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
