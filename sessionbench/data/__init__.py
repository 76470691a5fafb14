"""Datasets: readers, the paper's protocol, the ragged `Sessions`/`Split` types, the cache and
the synthetic generator. Start with :func:`load_dataset`."""

from sessionbench.data.datasets import DATASETS, dataset_names, load_dataset
from sessionbench.data.protocol import Clicks, Protocol, apply_protocol
from sessionbench.data.sessions import Sessions, Split
from sessionbench.errors import DataError, DataWarning

__all__ = [
    "DATASETS",
    "Clicks",
    "DataError",
    "DataWarning",
    "Protocol",
    "Sessions",
    "Split",
    "apply_protocol",
    "dataset_names",
    "load_dataset",
]
