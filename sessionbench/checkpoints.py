"""Resumable trainings: the checkpoint file a training is saved in after every epoch, its
identity, and the checksum that tells a damaged file from a good one.

:func:`sessionbench.training.train_epochs` writes and reads these; a model only names the
objects whose state must travel with its weights (:class:`Checkpoint`'s ``state``).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sessionbench
from sessionbench.data import Split
from sessionbench.files import atomic_write, set_aside
from sessionbench.provenance import code_identity
from sessionbench.recommender import Recommender

__all__ = [
    "Checkpoint",
    "checkpoint_files",
    "checkpoint_identity",
    "fit_checkpoint",
    "phase_checkpoint",
    "read_checkpoint_file",
    "resumed",
    "write_checkpoint_file",
]

log = logging.getLogger(__name__)

#: The phases of a training after its first one that keep their own checkpoint file beside it
#: (the fair protocol's refit on all of the training data after the selection run).
PHASES = ("refit",)


def phase_checkpoint(path: str | Path | None, phase: str) -> Path | None:
    """The checkpoint file of a later ``phase`` of the training checkpointed at ``path``:
    ``<stem>-<phase><suffix>`` beside it; None when ``path`` is None."""
    if path is None:
        return None
    if phase not in PHASES:
        raise ValueError(f"unknown training phase {phase!r}; expected one of {PHASES}")
    path = Path(path)
    return path.with_name(f"{path.stem}-{phase}{path.suffix}")


def checkpoint_files(path: str | Path) -> list[Path]:
    """Every file a training checkpointed at ``path`` may have written (its phases' too), for
    the harness to remove once the result is safe."""
    return [Path(path), *(phase_checkpoint(path, phase) for phase in PHASES)]


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


def resumed(*checkpoints: Checkpoint | None) -> dict[str, float] | None:
    """``{"epochs", "seconds"}`` that a training took from its ``checkpoints`` (one per phase,
    summed), None if it took none: what a model sets as ``resumed_`` for the harness to record."""
    taken = [c for c in checkpoints if c is not None and c.resumed_epochs]
    if not taken:
        return None
    return {"epochs": sum(c.resumed_epochs for c in taken), "seconds": round(sum(c.resumed_seconds for c in taken), 3)}


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
