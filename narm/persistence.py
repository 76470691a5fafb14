"""Saving a trained NARM and reading it back: its hyperparameters, vocabulary size and weights
as a ``state_dict`` (no pickled objects; read with torch's ``weights_only``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sessionbench.training import resolve_device

if TYPE_CHECKING:  # pragma: no cover
    from narm.recommender import NARM

__all__ = ["load_model", "save_model"]


def save_model(model: NARM, path: str | Path) -> Path:
    """Write ``model``'s class, hyperparameters, vocabulary size and weights to ``path``."""
    model._check_fitted("module_")
    path = Path(path)
    torch.save(
        {
            "class": f"{type(model).__module__}:{type(model).__qualname__}",
            "params": model.get_params(),
            "n_items": model.n_items_,
            "state_dict": model.module_.state_dict(),
        },
        path,
    )
    return path


def load_model(cls: type[NARM], path: str | Path, n_items: int | None = None, device: str = "cpu") -> NARM:
    """A ``cls`` read from a file written by :func:`save_model`, on ``device``.

    Raises:
        ValueError: the file is not a saved NARM, or it was trained on another number of items
            than ``n_items``.
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"params", "n_items", "state_dict"} <= state.keys():
        raise ValueError(f"{path}: not a checkpoint written by NARM.save (expected params, n_items, state_dict)")
    if n_items is not None and state["n_items"] != n_items:
        raise ValueError(
            f"{path}: checkpoint was trained on {state['n_items']} items, but the data has {n_items} items; "
            "retrain on this item vocabulary"
        )
    rec = cls(**state["params"])
    rec.n_items_ = int(state["n_items"])
    rec.device = str(resolve_device(device))
    rec.module_ = rec._new_module(rec.n_items_, torch.Generator())
    rec.module_.load_state_dict(state["state_dict"])
    rec.module_.to(rec.device).eval()
    return rec
