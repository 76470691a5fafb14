"""The paper's Figure 5 (NARM vs the best baseline, bars per metric), drawn from raw results
with matplotlib's Agg backend, so it needs no display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["bar_figure"]


def bar_figure(path: Path, title: str, bars: dict[str, dict[str, float]]) -> Path:
    """Grouped bars: one group per metric, one bar per method (values in percent).

    Args:
        path: Where to write the PNG.
        title: Figure title (the dataset).
        bars: method label -> {metric label: value}.
    """
    methods = list(bars)
    metrics = list(next(iter(bars.values())))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for i, method in enumerate(methods):
        xs = [m + (i - (len(methods) - 1) / 2) * width for m in range(len(metrics))]
        heights = [bars[method][metric] for metric in metrics]
        rects = ax.bar(xs, heights, width, label=method)
        ax.bar_label(rects, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_xlabel("metric (all test cases, full ranking)")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, max(max(v.values()) for v in bars.values()) * 1.15)  # room for the value labels
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})  # no version stamp: identical bytes on re-render
    plt.close(fig)
    return path
