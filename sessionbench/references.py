"""Published numbers beyond the NARM paper, for the reference column of a page: the models that
every session-recommendation paper since compares against (STAMP, SR-GNN, GCE-GNN), and the
datasets they added (Tmall, Nowplaying).

Recall@20 (the papers' P@20, the same quantity) and MRR@20 in %, as published. Their scripts
picked the best epoch on the test set, reporting the best Recall and the best MRR over epochs
(SR-GNN's and GCE-GNN's ``main.py``), so these are test-selected numbers: a page says so.
"""

from __future__ import annotations

__all__ = ["BEYOND", "BEYOND_SOURCE", "beyond_rows"]

#: Where the numbers come from, as a page names it.
BEYOND_SOURCE = (
    "beyond the paper, as published and selected on the test set by their authors' scripts: STAMP and SR-GNN "
    "on DIGINETICA and YOOCHOOSE 1/64 from SR-GNN (Wu et al., AAAI 2019), Table 2; GCE-GNN, and every row on "
    "Tmall and Nowplaying, from GCE-GNN (Wang et al., SIGIR 2020), Table 3"
)

#: (dataset, click order) -> paper row -> (Recall@20, MRR@20).
BEYOND: dict[tuple[str, str], dict[str, tuple[float, float]]] = {
    ("diginetica", "timeframe"): {"STAMP": (45.64, 14.32), "SR-GNN": (50.73, 17.59), "GCE-GNN": (54.22, 19.04)},
    ("yoochoose-1-64", "file"): {"STAMP": (68.74, 29.67), "SR-GNN": (70.57, 30.94)},
    ("tmall", "file"): {"STAMP": (26.47, 13.36), "SR-GNN": (27.57, 13.72), "GCE-GNN": (33.42, 15.42), "NARM": (23.30, 10.70)},
    ("nowplaying", "file"): {"STAMP": (17.66, 6.88), "SR-GNN": (18.87, 7.47), "GCE-GNN": (22.37, 8.40), "NARM": (18.59, 6.93)},
}


def beyond_rows(dataset: str, order: str | None) -> dict[str, tuple[float, float]]:
    """The published rows beyond the paper for a dataset and its click order (empty if none)."""
    return dict(BEYOND.get((dataset, order or "file"), {}))
