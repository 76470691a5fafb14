"""Session-based k-nearest-neighbour methods after session-rec (github.com/rn5l/session-rec):
S-KNN, V-SKNN, STAN and VSTAN, one file each, on the shared core in :mod:`.neighbors`."""

from baselines.knn.sknn import SKNN
from baselines.knn.stan import STAN
from baselines.knn.vsknn import VSKNN
from baselines.knn.vstan import VSTAN

__all__ = ["SKNN", "STAN", "VSKNN", "VSTAN"]
