"""SR-GNN: the session graphs against hand-made ones and against the authors' construction, the
network, and the shipped contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, as_numpy, oracle_split
from srgnn import SRGNN, SRGNNModule, session_graphs

TINY = {"hidden_size": 12, "epochs": 2, "batch_size": 64, "learning_rate": 0.01}

pytestmark = pytest.mark.usefixtures("one_thread")


def graphs_of(*rows: list[int]):
    lengths = torch.tensor([len(r) for r in rows])
    items = torch.zeros(len(rows), int(lengths.max()), dtype=torch.int64)
    for i, r in enumerate(rows):
        items[i, : len(r)] = torch.tensor(r)
    return session_graphs(items, lengths)


def test_a_hand_made_prefix_with_a_repeat_and_a_self_loop():
    # clicks 3 1 3 2 2: nodes 1, 2, 3 (indices 0, 1, 2); edges 3->1, 1->3, 3->2, 2->2
    nodes, incoming, outgoing, alias = graphs_of([3, 1, 3, 2, 2]).dense(0)
    assert nodes.tolist() == [1, 2, 3] and alias.tolist() == [2, 0, 2, 1, 1]
    # incoming row v: v's predecessors / in-degree(v); 2 (index 1) comes from 3 and from itself
    np.testing.assert_allclose(incoming.numpy(), [[0, 0, 1], [0, 0.5, 0.5], [1, 0, 0]])
    # outgoing row u: u's successors / out-degree(u); 3 (index 2) goes to 1 and to 2
    np.testing.assert_allclose(outgoing.numpy(), [[0, 0, 1], [0, 1, 0], [0.5, 0.5, 0]])


def test_a_repeated_transition_counts_once_and_padding_makes_no_node():
    g = graphs_of([1, 2, 1, 2], [5])
    nodes, incoming, outgoing, alias = g.dense(0)
    assert nodes.tolist() == [1, 2] and alias.tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(outgoing.numpy(), [[0, 1], [1, 0]])  # 1->2 twice is one edge
    np.testing.assert_allclose(incoming.numpy(), [[0, 1], [1, 0]])
    nodes, incoming, outgoing, alias = g.dense(1)
    assert nodes.tolist() == [5] and alias.tolist() == [0] and not incoming.any() and not outgoing.any()
    assert g.node_item.tolist() == [1, 2, 5]  # no padding node anywhere


def reference_slice(prefix: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The authors' ``Data.get_slice`` for one unpadded prefix (utils.py), loop by loop."""
    node = np.unique(prefix)
    u_a = np.zeros((len(node), len(node)))
    for i in range(len(prefix) - 1):
        u = np.where(node == prefix[i])[0][0]
        v = np.where(node == prefix[i + 1])[0][0]
        u_a[u][v] = 1
    u_sum_in = np.sum(u_a, 0)
    u_sum_in[np.where(u_sum_in == 0)] = 1
    u_a_in = np.divide(u_a, u_sum_in)
    u_sum_out = np.sum(u_a, 1)
    u_sum_out[np.where(u_sum_out == 0)] = 1
    u_a_out = np.divide(u_a.transpose(), u_sum_out)
    a = np.concatenate([u_a_in, u_a_out]).transpose()
    return node, a, np.array([np.where(node == i)[0][0] for i in prefix])


def test_batched_graphs_equal_the_authors_construction_prefix_by_prefix():
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(1, 8, size=rng.integers(1, 12))) for _ in range(50)]
    g = graphs_of(*rows)
    for b, row in enumerate(rows):
        node, a, alias = reference_slice(row)
        nodes, incoming, outgoing, ours = g.dense(b)
        n = len(node)
        assert nodes.tolist() == node.tolist() and ours.tolist() == alias.tolist()
        np.testing.assert_allclose(incoming.numpy(), a[:, :n], rtol=1e-6)
        np.testing.assert_allclose(outgoing.numpy(), a[:, n:], rtol=1e-6)


def test_the_readout_reads_the_last_clicks_node_state():
    module = SRGNNModule(10, hidden_size=6, generator=torch.Generator().manual_seed(0))
    items = torch.tensor([[3, 1, 3, 0], [4, 4, 4, 2]])
    lengths = torch.tensor([3, 4])
    scores = module(items, lengths)
    assert scores.shape == (2, 10) and torch.isfinite(scores).all()
    alone = module(items[:1, :3], lengths[:1])  # the padding changes nothing
    torch.testing.assert_close(scores[:1], alone)


def test_the_learning_rate_decays_every_three_epochs():
    rec = SRGNN(**{**TINY, "epochs": 7, "patience": None, "refit": False})
    rates = []
    original = SRGNN._schedule

    def recording(self, optimizer):
        schedule = original(self, optimizer)
        step = schedule.step

        def step_and_record():
            rates.append(optimizer.param_groups[0]["lr"])
            step()

        schedule.step = step_and_record
        return schedule

    SRGNN._schedule = recording
    try:
        rec.fit(oracle_split(n_train=60), seed=0, progress=False)
    finally:
        SRGNN._schedule = original
    np.testing.assert_allclose(rates, [1e-2] * 3 + [1e-3] * 3 + [1e-4])


def test_fit_learns_the_oracle():
    split = oracle_split()
    rec = SRGNN(**TINY).fit(split, seed=0, progress=False)
    after_a = as_numpy(rec.score(PrefixBatch.from_lists([[5, 0], [7, 3, 0]])))
    assert (after_a.argmax(1) == 1).all()  # B follows A


class TestSRGNNContract(RecommenderContract):
    def make(self):
        return SRGNN(**TINY)


def dense_query(module: SRGNNModule, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """s_h computed the code's way, one padded prefix at a time with dense matrices."""
    out = []
    for b in range(len(items)):
        row = items[b, : lengths[b]].tolist()
        node, a, alias = reference_slice(row)
        n = len(node)
        a_in, a_out = torch.tensor(a[:, :n], dtype=torch.float32), torch.tensor(a[:, n:], dtype=torch.float32)
        h = module.embedding(torch.tensor(node))
        for _ in range(module.step):
            i = a_in @ module.edge_in(h) + module.b_iah
            o = a_out @ module.edge_out(h) + module.b_oah
            gi, gh = module.w_ih(torch.cat([i, o], 1)), module.w_hh(h)
            r = torch.sigmoid(gi[:, :12] + gh[:, :12])
            z = torch.sigmoid(gi[:, 12:24] + gh[:, 12:24])
            new = torch.tanh(gi[:, 24:] + r * gh[:, 24:])
            h = new + z * (h - new)
        v = h[torch.tensor(alias)]
        alpha = module.linear_three(torch.sigmoid(module.linear_one(v[-1]) + module.linear_two(v)))
        out.append(module.linear_transform(torch.cat([(alpha * v).sum(0), v[-1]])))
    return torch.stack(out)


def test_the_packed_network_equals_the_codes_dense_one_prefix_by_prefix():
    module = SRGNNModule(9, hidden_size=12, step=2, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(1)
    rows = [list(rng.integers(1, 10, size=rng.integers(1, 9))) for _ in range(20)]
    lengths = torch.tensor([len(r) for r in rows])
    items = torch.zeros(len(rows), int(lengths.max()), dtype=torch.int64)
    for i, r in enumerate(rows):
        items[i, : len(r)] = torch.tensor(r)
    with torch.no_grad():
        torch.testing.assert_close(module.query(items, lengths), dense_query(module, items, lengths), rtol=1e-5, atol=1e-6)
