"""GCE-GNN: the global graph of a toy split and the session graph of hand-made prefixes against
graphs worked out by hand and against the authors' construction, the packed attention against the
code's dense one, the per-dataset settings, and the shipped contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gcegnn import GCEGNN, GCEGNNModule, global_graph, session_graphs
from sessionbench.data import Sessions
from sessionbench.plan import plan
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy, oracle_split
from sessionbench.training import holdout_recent

TINY = {"hidden_size": 12, "epochs": 2, "batch_size": 64, "learning_rate": 0.01, "n_neighbours": 4}
#: Tiny settings that learn the oracle's A -> B (GCE-GNN's scores start near 0 and grow slowly).
LEARNS = {**TINY, "epochs": 4, "learning_rate": 0.03, "patience": None}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_global_graph_of_a_toy_split():
    # items 0, 1, 2 are embedding rows 1, 2, 3; sessions 1 2 3 1 and 2 3
    sessions = Sessions.from_lists([[0, 1, 2, 0], [1, 2]])
    neighbours, weights = global_graph(sessions, 3, n_neighbours=2)
    # every pair within 3 clicks, both ways, each occurrence once: item 1 has 2 (x2), 3 (x2) and
    # itself (x2, at distance 3); equal counts keep the order of first occurrence
    assert neighbours.tolist() == [[0, 0], [2, 3], [1, 3], [2, 1]]
    assert weights.tolist() == [[0, 0], [2, 2], [2, 2], [2, 2]]
    neighbours, weights = global_graph(sessions, 3, n_neighbours=3)
    assert neighbours[1].tolist() == [2, 3, 1] and weights[1].tolist() == [2, 2, 2]
    assert set(neighbours[2].tolist()) <= {1, 3} and weights[2].tolist() == [2, 2, 2]  # 2 neighbours, drawn to 3


def test_the_global_graph_ranks_neighbours_by_count():
    neighbours, weights = global_graph(Sessions.from_lists([[0, 1, 0, 1]]), 2, n_neighbours=2)
    assert neighbours[1].tolist() == [2, 1] and weights[1].tolist() == [4, 2]  # 1-2 four times, 1-1 twice


def reference_adjacency(prefix: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The authors' ``Data.__getitem__`` for one unpadded prefix: built on the reversed prefix."""
    u_input = list(reversed(prefix))
    node = np.unique(u_input)
    adj = np.zeros((len(node), len(node)), dtype=np.int64)
    for i in range(len(u_input)):
        u = np.where(node == u_input[i])[0][0]
        adj[u][u] = 1
        if i + 1 == len(u_input):
            break
        v = np.where(node == u_input[i + 1])[0][0]
        if u == v or adj[u][v] == 4:
            continue
        adj[v][v] = 1
        if adj[v][u] == 2:
            adj[u][v] = 4
            adj[v][u] = 4
        else:
            adj[u][v] = 2
            adj[v][u] = 3
    return node, adj


def graphs_of(*rows: list[int]):
    lengths = torch.tensor([len(r) for r in rows])
    items = torch.zeros(len(rows), int(lengths.max()), dtype=torch.int64)
    for i, r in enumerate(rows):
        items[i, : len(r)] = torch.tensor(r)
    return items, lengths, session_graphs(items, lengths)


def test_a_hand_made_session_graph_has_all_four_kinds_of_edge():
    # clicks 1 2 1 3: 1 -> 2 and 2 -> 1 (in-out both ways), 1 -> 3 (3's in-edge, 1's out-edge)
    nodes, adjacency = graphs_of([1, 2, 1, 3])[2].dense(0)
    assert nodes.tolist() == [1, 2, 3]
    assert adjacency.tolist() == [[1, 4, 3], [4, 1, 0], [2, 0, 1]]


def test_batched_session_graphs_equal_the_authors_construction():
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(1, 7, size=rng.integers(1, 10))) for _ in range(60)]
    graphs = graphs_of(*rows)[2]
    for b, row in enumerate(rows):
        node, adj = reference_adjacency(row)
        nodes, adjacency = graphs.dense(b)
        assert nodes.tolist() == node.tolist()
        assert adjacency.tolist() == adj.tolist()


def test_the_packed_session_attention_equals_the_codes_dense_one():
    module = GCEGNNModule(8, hidden_size=6, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(2)
    rows = [list(rng.integers(1, 9, size=rng.integers(1, 8))) for _ in range(15)]
    _, _, graphs = graphs_of(*rows)
    h = module.embedding(graphs.node_item)
    with torch.no_grad():
        packed = module._local(h, graphs)
        for b in range(len(rows)):
            nodes, adj = graphs.dense(b)
            x = module.embedding(nodes)
            e = [F.leaky_relu((x[:, None, :] * x[None, :, :]) @ module.a[:, r], 0.2) for r in range(4)]
            score = torch.full(adj.shape, -9e15)
            for r in range(4):
                score = torch.where(adj == r + 1, e[r], score)
            dense = torch.softmax(score, dim=1) @ x
            torch.testing.assert_close(packed[graphs.node_graph == b], dense, rtol=1e-5, atol=1e-6)


def test_padding_and_the_batch_around_a_prefix_change_nothing():
    module = GCEGNNModule(9, hidden_size=8, hop=2, n_neighbours=3, generator=torch.Generator().manual_seed(1)).eval()
    neighbours, weights = global_graph(Sessions.from_lists([[0, 1, 2, 3], [4, 5, 1, 6, 7], [8, 0, 2]]), 9, 3)
    module.set_global_graph(neighbours, weights)
    items, lengths, _ = graphs_of([3, 5, 3, 2], [7, 1], [9])
    with torch.no_grad():
        together = module(items, lengths)
        for b in range(3):
            n = int(lengths[b])
            torch.testing.assert_close(together[b : b + 1], module(items[b : b + 1, :n], lengths[b : b + 1]))
    assert math.isfinite(float(together.sum()))


def test_each_dataset_takes_the_codes_settings():
    jobs = {j.dataset: j.params for j in plan(["diginetica", "tmall", "nowplaying"], ["gcegnn"], [0])}
    assert jobs == {"diginetica": {"hop": 2, "dropout_gcn": 0.2}, "tmall": {"dropout_gcn": 0.6, "dropout_local": 0.5}, "nowplaying": {}}


def test_the_selection_runs_global_graph_leaves_out_the_validation_sessions(monkeypatch):
    split = oracle_split(n_train=120)
    seen = []
    learn = GCEGNN._learn_from
    monkeypatch.setattr(GCEGNN, "_learn_from", lambda self, sessions, seed: (seen.append(len(sessions)), learn(self, sessions, seed))[1])
    rec = GCEGNN(**TINY).fit(split, seed=0, progress=False)
    assert seen == [len(holdout_recent(split.train, 0.1)[0]), len(split.train)]
    assert rec.module_.neighbours.shape == (split.n_items + 1, 4) and rec.module_.weights.sum() > 0


def test_fit_learns_the_oracle():
    rec = GCEGNN(**LEARNS).fit(oracle_split(), seed=0, progress=False)
    after_a = as_numpy(rec.score(PrefixBatch.from_lists([[5, 0], [7, 3, 0]])))
    assert (after_a.argmax(1) == 1).all()  # B follows A


class TestGCEGNNContract(RecommenderContract):
    def make(self):
        return GCEGNN(**LEARNS)
