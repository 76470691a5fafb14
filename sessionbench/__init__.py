"""sessionbench: session-based recommenders of the NARM paper behind one interface, evaluated
by full ranking on shared splits, with the paper's tables as markdown."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sessionbench.data import Split, load_dataset
from sessionbench.errors import DataError, DataWarning
from sessionbench.recommender import PrefixBatch, Recommender

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__version__ = "0.1.0"


def load_results(results_dir: str | os.PathLike[str], dataset: str | None = None) -> pandas.DataFrame:
    """Every finished run under ``results_dir`` as a DataFrame, one row per run (dataset,
    method, settings, seed, metrics under each tie mode, costs, code version, device); see
    :func:`sessionbench.runs.load_results`."""
    from sessionbench.runs import load_results as load  # imported on use: it needs torch

    return load(results_dir, dataset)


__all__ = ["DataError", "DataWarning", "PrefixBatch", "Recommender", "Split", "__version__", "load_dataset", "load_results"]
