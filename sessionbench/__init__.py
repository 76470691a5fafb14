"""sessionbench: session-based recommenders of the NARM paper behind one interface, evaluated
by full ranking on shared splits, with the paper's tables as markdown."""

from sessionbench.data import Split, load_dataset
from sessionbench.errors import DataError, DataWarning
from sessionbench.recommender import PrefixBatch, Recommender

__version__ = "0.1.0"

__all__ = ["DataError", "DataWarning", "PrefixBatch", "Recommender", "Split", "__version__", "load_dataset"]
