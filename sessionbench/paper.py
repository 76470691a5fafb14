"""The numbers the NARM paper (Li et al., CIKM 2017) and later re-runs published, in percent,
for the side-by-side columns of our tables.

Sources:
- NARM paper, Tables 1-5. Its DIGINETICA columns used clicks in file order (the NARM
  authors' preprocessing script did not sort by timeframe).
- SR-GNN (Wu et al., AAAI 2019), Table 2: the same baselines and NARM re-run on DIGINETICA
  with clicks sorted by timeframe, which is the split most researchers use (and ours).
- The official GRU4Rec code with its authors' DIGINETICA parameters, run on our DIGINETICA split
  (shared/peers/ANCHORS.md): the reference for a tuned GRU4Rec.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASELINE_ROWS",
    "EXTRA_ROWS",
    "PROPOSED_ROW",
    "ROWS",
    "TABLE1",
    "TABLE2",
    "TABLE4",
    "TABLE5",
    "Reference",
    "SESSION_REC",
    "ablations_published",
    "reference_for",
]

#: Table 3's rows in the paper's order; the last is the proposed model.
ROWS = ("POP", "S-POP", "Item-KNN", "BPR-MF", "FPMC", "GRU-Rec", "Improved GRU-Rec", "NARM")
PROPOSED_ROW = "NARM"
#: Reference rows beside the paper's own (a published setting of a paper's method).
EXTRA_ROWS = ("GRU4Rec (tuned)",)
BASELINE_ROWS = ROWS[:-1]

#: Table 1: clicks, train sequences, test sequences, items, average length.
TABLE1: dict[str, dict[str, float]] = {
    "yoochoose-1-64": {"clicks": 557_248, "train_sessions": 369_859, "test_sessions": 55_898, "items": 16_766, "avg_length": 6.16},
    "yoochoose-1-4": {"clicks": 8_326_407, "train_sessions": 5_917_746, "test_sessions": 55_898, "items": 29_618, "avg_length": 5.71},
    "diginetica": {"clicks": 982_961, "train_sessions": 719_470, "test_sessions": 60_858, "items": 43_097, "avg_length": 5.12},
}


@dataclass(frozen=True)
class Reference:
    """Published (Recall@20, MRR@20) per Table 3 row, and where they come from."""

    source: str
    rows: dict[str, tuple[float, float]]


_NARM_Y64 = {
    "POP": (6.71, 1.65), "S-POP": (30.44, 18.35), "Item-KNN": (51.60, 21.81), "BPR-MF": (31.31, 12.08),
    "FPMC": (45.62, 15.01), "GRU-Rec": (60.64, 22.89), "Improved GRU-Rec": (67.84, 29.00), "NARM": (68.32, 28.76),
}  # fmt: skip
_NARM_Y4 = {
    "POP": (1.33, 0.30), "S-POP": (27.08, 17.75), "Item-KNN": (52.31, 21.70), "BPR-MF": (3.40, 1.57),
    "GRU-Rec": (59.53, 22.60), "Improved GRU-Rec": (69.11, 29.22), "NARM": (69.73, 29.23),
}  # fmt: skip  (FPMC: "not enough memory")
_NARM_DIGI = {
    "POP": (0.91, 0.23), "S-POP": (21.07, 14.69), "Item-KNN": (28.35, 9.45), "BPR-MF": (15.19, 8.63),
    "FPMC": (31.55, 8.92), "GRU-Rec": (43.82, 15.46), "Improved GRU-Rec": (57.95, 24.93), "NARM": (62.58, 27.35),
}  # fmt: skip
_SRGNN_DIGI = {
    "POP": (0.89, 0.20), "S-POP": (21.06, 13.68), "Item-KNN": (35.75, 11.57), "BPR-MF": (5.24, 1.98),
    "FPMC": (26.53, 6.95), "GRU-Rec": (29.45, 8.33), "NARM": (49.70, 16.17),
    "GRU4Rec (tuned)": (54.07, 18.24),
}  # fmt: skip

_NARM = "NARM paper (Li et al., CIKM 2017), Table 3"
_REFERENCES = {
    ("yoochoose-1-64", "file"): Reference(_NARM, _NARM_Y64),
    ("yoochoose-1-4", "file"): Reference(_NARM, _NARM_Y4),
    ("diginetica", "file"): Reference(_NARM + " (clicks in file order)", _NARM_DIGI),
    ("diginetica", "timeframe"): Reference(
        "SR-GNN (Wu et al., AAAI 2019), Table 2: the paper's baselines re-run on clicks sorted by timeframe; "
        "GRU4Rec (tuned): the official GRU4Rec code with its authors' DIGINETICA parameters on this split",
        _SRGNN_DIGI,
    ),
}


def reference_for(dataset: str, order: str | None) -> Reference | None:
    """The published numbers that match a dataset and its click order, if any: the paper's
    (or SR-GNN's re-run of its baselines), with the models beyond the paper as their own papers
    published them (:mod:`sessionbench.references`)."""
    from sessionbench.references import BEYOND_SOURCE, beyond_rows

    ours, beyond = _REFERENCES.get((dataset, order or "file")), beyond_rows(dataset, order)
    if not beyond:
        return ours
    if ours is None:
        return Reference(BEYOND_SOURCE[0].upper() + BEYOND_SOURCE[1:], beyond)
    return Reference(f"{ours.source}; {BEYOND_SOURCE}", {**beyond, **ours.rows})


def ablations_published(dataset: str, order: str | None) -> bool:
    """Whether the paper's Tables 2 and 4 apply: its own datasets, with the click order it used."""
    return (dataset, order or "file") in (("yoochoose-1-64", "file"), ("yoochoose-1-4", "file"), ("diginetica", "file"))


#: Table 2 (decoders), (Recall@20, MRR@20).
TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "fully connected": {"yoochoose-1-64": (67.67, 29.17), "yoochoose-1-4": (69.49, 29.54), "diginetica": (57.84, 24.77)},
    "bi-linear": {"yoochoose-1-64": (68.32, 28.76), "yoochoose-1-4": (69.73, 29.23), "diginetica": (62.58, 27.35)},
}

#: Table 4: (encoder, hidden size) -> dataset -> (Recall@20, MRR@20).
TABLE4: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("global", 50): {"yoochoose-1-64": (67.26, 26.95), "yoochoose-1-4": (67.67, 27.10), "diginetica": (59.63, 23.52)},
    ("global", 100): {"yoochoose-1-64": (68.15, 28.37), "yoochoose-1-4": (68.91, 28.48), "diginetica": (61.88, 26.51)},
    ("local", 50): {"yoochoose-1-64": (67.07, 26.79), "yoochoose-1-4": (67.50, 27.21), "diginetica": (58.74, 22.91)},
    ("local", 100): {"yoochoose-1-64": (68.10, 28.38), "yoochoose-1-4": (68.01, 27.36), "diginetica": (61.71, 26.04)},
    ("hybrid", 50): {"yoochoose-1-64": (68.28, 28.10), "yoochoose-1-4": (69.17, 28.67), "diginetica": (61.73, 26.25)},
    ("hybrid", 100): {"yoochoose-1-64": (68.32, 28.76), "yoochoose-1-4": (69.73, 29.23), "diginetica": (62.58, 27.35)},
}

#: Table 5 (DIGINETICA, file order): test cases answered in the top 20, per prefix length 1..19.
TABLE5: dict[str, tuple[int, ...]] = {
    "Improved GRU-Rec": (8747, 6601, 4923, 3625, 2789, 2029, 1520, 1198, 915, 690, 509, 411, 304, 243, 199, 149, 98, 88, 70),
    "NARM": (9358, 7084, 5299, 3958, 3019, 2202, 1656, 1295, 996, 753, 587, 459, 323, 260, 219, 165, 112, 93, 75),
}


#: session-rec's published HitRate@20 / MRR@20 (%) on its own single split of each dataset (close
#: to ours, not identical), by our method name: Ludewig, Latifi, Jannach et al.'s result tables, as
#: quoted in the issue that added these methods; STAN on YOOCHOOSE 1/64 as later papers quote it.
#: session-rec ranks by sorting and taking the first 20, so ties behave about like our
#: conservative or median modes (see docs/methods.md).
SESSION_REC: dict[str, dict[str, tuple[float, float]]] = {
    "diginetica": {"ar": (43.9, 14.7), "sknn": (48.5, 17.4), "vsknn": (52.0, 18.4)},
    "yoochoose-1-64": {"ar": (66.5, 28.6), "sr": (66.7, 30.3), "sknn": (64.2, 25.2), "vsknn": (69.6, 28.8), "stan": (69.45, 28.74)},
}
