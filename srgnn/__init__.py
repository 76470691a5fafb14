"""SR-GNN (Wu et al., AAAI 2019): the session graphs (:mod:`srgnn.graph`) and the network and
its training (:mod:`srgnn.model`)."""

from srgnn.graph import PackedGraphs, session_graphs
from srgnn.model import SRGNN, SRGNNModule

__all__ = ["PackedGraphs", "SRGNN", "SRGNNModule", "session_graphs"]
