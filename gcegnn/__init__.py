"""GCE-GNN (Wang et al., SIGIR 2020): the global and session graphs (:mod:`gcegnn.graph`) and
the network and its training (:mod:`gcegnn.model`)."""

from gcegnn.graph import PackedSessionGraphs, global_graph, session_graphs
from gcegnn.model import GCEGNN, GCEGNNModule

__all__ = ["GCEGNN", "GCEGNNModule", "PackedSessionGraphs", "global_graph", "session_graphs"]
