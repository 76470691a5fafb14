"""Figure 6 of the NARM paper: a heatmap of the attention weights alpha_tj (eq. 7-8) that a
trained model gives the clicks of a few test sessions.

Each row is one test session (labelled with its session id), each column a click position;
the colour is the weight of that click when the model predicts the session's last click from
all the clicks before it. Padding cells are left blank. Drawn with matplotlib's object API
(no pyplot state), saved as PNG.

Deviations from the paper/reference: the paper does not say how its sessions were chosen; we
take ``n_sessions`` evenly spaced test sessions whose prefix has between ``min_length`` and
``max_length`` clicks, so the figure is the same for the same data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from sessionbench.recommender import PAD, PrefixBatch

if TYPE_CHECKING:  # pragma: no cover
    from narm.recommender import NARM
    from sessionbench.data import Sessions, Split

__all__ = ["attention_figure", "attention_weights", "last_click_batch", "plot_attention", "select_sessions"]


def attention_weights(model: NARM, batch: PrefixBatch) -> np.ndarray:
    """:meth:`NARM.attention`: alpha_tj of each prefix's clicks, float32[B, L], 0 on padding
    and on clicks that ``max_length`` cuts off."""
    if model.encoder == "global":
        raise NotImplementedError(f"{type(model).__name__} ({model.name}) has no attention: its encoder is global")
    items, lengths = model._prepare(batch)
    model.module_.eval()
    with torch.inference_mode():
        alpha = model.module_.encode(items, lengths)[1].float().cpu().numpy()
    out = np.zeros(batch.items.shape, dtype=np.float32)
    cut = np.maximum(batch.lengths - model.max_length, 0)
    first = cut if model.truncate == "last" else np.zeros_like(cut)
    for row in range(len(batch)):
        n = min(int(batch.lengths[row]), model.max_length)
        out[row, first[row] : first[row] + n] = alpha[row, :n]
    return out



def select_sessions(sessions: Sessions, n_sessions: int = 10, min_length: int = 5, max_length: int = 19) -> np.ndarray:
    """Positions of ``n_sessions`` evenly spaced sessions whose prefix (all clicks but the last)
    has ``min_length``..``max_length`` clicks; the longest sessions stand in if too few qualify."""
    prefix = sessions.lengths - 1
    fit = np.flatnonzero((prefix >= min_length) & (prefix <= max_length))
    if len(fit) < n_sessions:
        fit = np.sort(np.argsort(-prefix, kind="stable")[:n_sessions])
    return fit[np.linspace(0, len(fit) - 1, min(n_sessions, len(fit))).round().astype(int)]


def last_click_batch(sessions: Sessions, index: np.ndarray) -> PrefixBatch:
    """For each session at ``index``: every click but the last as the prefix, the last as target."""
    return sessions.gather_prefixes(np.asarray(index, dtype=np.int64), sessions.lengths[index] - 1)


def plot_attention(
    weights: np.ndarray,
    mask: np.ndarray,
    labels: list[str],
    path: Path,
    title: str = "NARM attention weights",
    row_label: str = "session id",
) -> Path:
    """Draw a weights heatmap to ``path`` (PNG).

    Args:
        weights: float[S, L] attention weights, one row per session.
        mask: bool[S, L] True at real clicks (other cells are left blank).
        labels: S row labels (session ids).
        path: Output file.
        title: The figure's title.
        row_label: What the rows are (the y axis label).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = np.ma.masked_array(weights, mask=~mask)
    rows, cols = weights.shape
    fig = Figure(figsize=(max(4.0, 0.45 * cols + 2.5), max(2.5, 0.4 * rows + 1.2)))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Reds", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(cols), [str(c + 1) for c in range(cols)])
    ax.set_yticks(range(rows), labels)
    ax.set_xlabel("click position in the session")
    ax.set_ylabel(row_label)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="alpha (eq. 7)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, format="png")
    return path


def attention_figure(recommender: NARM, split: Split, path: Path, n_sessions: int = 10) -> Path:
    """Figure 6: the attention a fitted NARM gives the clicks of a few test sessions."""
    index = select_sessions(split.test, n_sessions, max_length=recommender.max_length)
    batch = last_click_batch(split.test, index)
    weights = recommender.attention(batch)
    # preprocessed files hold no session ids: their sessions are named by position in the file
    has_ids = split.info.get("form") in ("raw", "synthetic") or str(split.info.get("dataset", "")).startswith("csv")
    labels = [str(i) if has_ids else f"#{i}" for i in split.test.ids[index]]
    title = f"{recommender.name} attention (normalisation: {recommender.attention_norm}) on {split.name}"
    return plot_attention(weights, batch.items != PAD, labels, path, title, "session id" if has_ids else "test session (position in the file)")
