"""GCE-GNN: global context enhanced graph neural networks (Wang, Wei, Hu, Chen, Zhang & Mao,
SIGIR 2020).

Checked against the authors' PyTorch code (github.com/CCIIPLab/GCE-GNN at 2125753:
``model.py``, ``aggregator.py``, ``utils.py``, ``main.py``). Our own code; nothing is copied.

What is computed for a prefix (d = 100; h: the item embeddings; graphs: :mod:`gcegnn.graph`):

- Session-level item representation (section 4.2, eq. 1-3; ``LocalAggregator``): for node i
  and each of its session-graph edges to j of kind r (self, in, out, in-out),
  e_ij = LeakyReLU_0.2((h_i * h_j) . a_r), alpha_ij = softmax over i's edges,
  h_i^s = sum_j alpha_ij h_j.
- Global-level item representation (section 4.1; ``GlobalAggregator``, ``hop`` layers as the
  code stacks them): with s the mean of the prefix's clicks' embeddings (repeats counted) and
  w_ij the global graph's count of neighbour j, pi_ij = w_2^T LeakyReLU_0.2(W_1 [s * h_j; w_ij]),
  alpha = softmax over the sampled neighbours, h_N = sum_j alpha_ij h_j,
  h_i^g = ReLU(W_3 dropout([h_i; h_N], dropout_gcn)). Hop 2 first aggregates the neighbours'
  neighbours into the neighbours (the code's KGCN-style loop).
- h_i' = dropout(h_i^s, dropout_local) + dropout(h_i^g, dropout_global) (section 4.3, eq. 7).
- Readout (section 4.3, eq. 8-10; ``compute_scores``): for the clicks in order with reversed
  positions p (the last click is position 0), z_t = tanh(W_1 [p_t; h_t']),
  s' = mean of the clicks' h_t', beta_t = w_2^T sigmoid(W_2 z_t + W_3 s' + b) (no softmax),
  S = sum_t beta_t h_t'; scores = S . h_v for every item (the item embeddings), the logits of
  the softmax cross-entropy (eq. 11-12).
- Initialisation: every parameter, embeddings and biases included, uniform in
  [-1/sqrt(d), 1/sqrt(d)] (the code's ``reset_parameters``).
- Training (``main.py``): Adam at 0.001 with L2 1e-5 (``weight_decay``), the rate times 0.1
  every 3 epochs, mini-batches of 100, up to 20 epochs, 12 neighbours per item; per dataset
  (:meth:`GCEGNN.defaults_for`, the code's overrides): DIGINETICA hop 2, dropout_gcn 0.2;
  Tmall dropout_gcn 0.6, dropout_local 0.5; Nowplaying and others hop 1, no dropout but
  dropout_global 0.5.

Deviations from the paper/reference:

- Epochs are selected on the suite's validation hold-out (early stopping with ``patience`` 3 on
  its Recall@20) and the model is refit on all of the training data; the code tracked the best
  Recall@20 and the best MRR@20 on the test set separately and stopped after 3 epochs without a
  gain in either, counted over the whole run. The global graph of each phase is built from that
  phase's training sessions (the selection run's omits the validation sessions, whose clicks
  would otherwise reach it).
- The padding of an item's neighbour list (fewer than 12) is drawn with the run's seed, not with
  numpy's global seed 2020.
- The graphs of a batch are packed side by side and attention runs over each node's edges only:
  the code's dense [B, N, N] attention without its padding and without the edges it masks with
  -9e15 (whose weights are exactly 0). The padding item is not a session-graph node.
- Prefixes are cut to their last ``max_length`` = 200 clicks, the size of the code's position
  table (the code would fail on a longer one).
- The softmax cross-entropy is computed fused over item blocks, in bf16 where the machine does
  it natively (``precision``; :mod:`sessionbench.losses`); the code's was fp32.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gcegnn.graph import PackedSessionGraphs, global_graph, session_graphs
from sessionbench.data import Sessions
from sessionbench.params import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE_INT,
    UNIT,
    check_params,
)
from sessionbench.softmax_models import PROTOCOL_RULES, PrefixSoftmaxModel, StepDecayAdam
from sessionbench.training import dropout

__all__ = ["GCEGNN", "GCEGNNModule"]


class GCEGNNModule(nn.Module):
    """The GCE-GNN network: item indices (embedding rows, 0 = padding) -> scores of every item.

    The global graph travels with the weights as two buffers (``neighbours``, ``weights``).
    """

    def __init__(
        self,
        n_items: int,
        hidden_size: int = 100,
        hop: int = 1,
        n_neighbours: int = 12,
        dropout_gcn: float = 0.0,
        dropout_local: float = 0.0,
        dropout_global: float = 0.5,
        max_length: int = 200,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        d = hidden_size
        self.hop, self.dropout_gcn, self.dropout_local, self.dropout_global = hop, dropout_gcn, dropout_local, dropout_global
        self.embedding = nn.Embedding(n_items + 1, d)
        self.position = nn.Embedding(max_length, d)
        self.a = nn.Parameter(torch.empty(d, 4))  # a_0..a_3, one column per kind of edge
        self.global_w1 = nn.ParameterList(nn.Parameter(torch.empty(d + 1, d)) for _ in range(hop))
        self.global_w2 = nn.ParameterList(nn.Parameter(torch.empty(d, 1)) for _ in range(hop))
        self.global_w3 = nn.ParameterList(nn.Parameter(torch.empty(2 * d, d)) for _ in range(hop))
        self.w_1 = nn.Parameter(torch.empty(2 * d, d))
        self.w_2 = nn.Parameter(torch.empty(d, 1))
        self.glu1 = nn.Linear(d, d)
        self.glu2 = nn.Linear(d, d, bias=False)
        self.register_buffer("neighbours", torch.zeros(n_items + 1, n_neighbours, dtype=torch.int64))
        self.register_buffer("weights", torch.zeros(n_items + 1, n_neighbours))
        bound = 1.0 / math.sqrt(d)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)

    @property
    def item_embeddings(self) -> torch.Tensor:
        """float[n_items, d]: every item's h_v of eq. 11 (padding row excluded), a view."""
        return self.embedding.weight[1:]

    def set_global_graph(self, neighbours: np.ndarray, weights: np.ndarray) -> None:
        """Install the sampled global graph (:func:`gcegnn.graph.global_graph`)."""
        self.neighbours.copy_(torch.from_numpy(neighbours))
        self.weights.copy_(torch.from_numpy(weights))

    def _local(self, h: torch.Tensor, graphs: PackedSessionGraphs) -> torch.Tensor:
        """Eq. 1-3: attention of every node over its session-graph edges, by kind of edge."""
        product = h[graphs.row] * h[graphs.col]  # [E, d]
        e = F.leaky_relu((product @ self.a).gather(1, graphs.kind[:, None]).squeeze(1), 0.2)
        top = torch.full((len(h),), -math.inf, dtype=e.dtype, device=e.device).scatter_reduce(0, graphs.row, e, "amax")
        weight = torch.exp(e - top[graphs.row])
        total = torch.zeros(len(h), dtype=e.dtype, device=e.device).index_add_(0, graphs.row, weight)
        alpha = (weight / total[graphs.row]).unsqueeze(1)
        return torch.zeros_like(h).index_add_(0, graphs.row, alpha * h[graphs.col])

    def _aggregate(self, layer: int, own: torch.Tensor, nb: torch.Tensor, w: torch.Tensor, s: torch.Tensor, gen) -> torch.Tensor:
        """One global aggregation: own float[M, d], its neighbours nb float[M, S, d] with counts
        w float[M, S], the session vector s float[M, d]."""
        features = torch.cat([s.unsqueeze(1) * nb, w.unsqueeze(-1)], dim=-1)  # [M, S, d + 1]
        pi = F.leaky_relu(features @ self.global_w1[layer], 0.2) @ self.global_w2[layer]  # [M, S, 1]
        alpha = torch.softmax(pi, dim=1)
        neighbourhood = (alpha * nb).sum(1)
        both = torch.cat([own, neighbourhood], dim=-1)
        if self.training:
            both = dropout(both, self.dropout_gcn, gen)
        return torch.relu(both @ self.global_w3[layer])

    def _global(self, graphs: PackedSessionGraphs, s: torch.Tensor, gen) -> torch.Tensor:
        """Section 4.1 over ``hop`` layers: every node's item with its sampled neighbours."""
        entities, weights = [graphs.node_item], []
        for _ in range(self.hop):
            entities.append(self.neighbours[entities[-1]])  # [R, S, ..., S]
            weights.append(self.weights[entities[-2]])
        vectors = [self.embedding(e) for e in entities]
        d, n_sample = vectors[0].shape[-1], self.neighbours.shape[1]
        for layer in range(self.hop):
            vectors = [
                self._aggregate(
                    layer,
                    vectors[h].reshape(-1, d),
                    vectors[h + 1].reshape(-1, n_sample, d),
                    weights[h].reshape(-1, n_sample),
                    s.repeat_interleave(n_sample**h, dim=0),
                    gen,
                ).reshape(vectors[h].shape)
                for h in range(self.hop - layer)
            ]
        return vectors[0]

    def query(self, items: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """S of eq. 10: float[B, d], the vector every item's embedding is scored against."""
        graphs = session_graphs(items, lengths)
        h = self.embedding(graphs.node_item)
        clicks = self.embedding(items[torch.arange(items.shape[1], device=items.device)[None, :] < lengths[:, None]])
        per_prefix = torch.zeros(len(items), h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, graphs.click_row, clicks)
        s = (per_prefix / lengths.unsqueeze(-1).to(h.dtype))[graphs.node_graph]  # the session vector, per node
        local, global_ = self._local(h, graphs), self._global(graphs, s, generator)
        if self.training:
            local = dropout(local, self.dropout_local, generator)
            global_ = dropout(global_, self.dropout_global, generator)
        hidden = (local + global_)[graphs.click_node]  # h_t' of every click, prefix by prefix
        starts = torch.cumsum(lengths, 0) - lengths
        reversed_position = (lengths[graphs.click_row] - 1) - (torch.arange(len(hidden), device=h.device) - starts[graphs.click_row])
        z = torch.tanh(torch.cat([self.position(reversed_position), hidden], dim=1) @ self.w_1)
        mean = torch.zeros_like(per_prefix).index_add_(0, graphs.click_row, hidden) / lengths.unsqueeze(-1).to(h.dtype)
        beta = torch.sigmoid(self.glu1(z) + self.glu2(mean)[graphs.click_row]) @ self.w_2  # [C, 1]
        return torch.zeros_like(per_prefix).index_add_(0, graphs.click_row, beta * hidden)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every item after each prefix: float[B, n_items]."""
        return self.query(items, lengths) @ self.item_embeddings.T


class GCEGNN(StepDecayAdam, PrefixSoftmaxModel):
    """GCE-GNN (Wang et al., SIGIR 2020) under the suite's protocol; see the module docstring.

    Args:
        hidden_size: d, the size of the embeddings and every hidden vector (100).
        hop: Global aggregation layers (the code's ``n_iter``: 1; DIGINETICA 2).
        n_neighbours: Neighbours sampled per item in the global graph (12).
        dropout_gcn: Dropout inside the global aggregation (0; DIGINETICA 0.2, Tmall 0.6).
        dropout_local: Dropout on the session-level representation (0; Tmall 0.5).
        dropout_global: Dropout on the global-level representation (0.5).
        learning_rate, l2, lr_decay, lr_decay_step, batch_size, epochs, patience: as for SR-GNN
            (0.001, 1e-5, 0.1, 3, 100; up to 20 epochs; patience 3).
        max_length: Clicks kept of longer prefixes (200, the code's position table).
        validation, validation_fraction, refit, selection, precision: as for NARM
            (:class:`sessionbench.softmax_models.PrefixSoftmaxModel`).
    """

    name: ClassVar[str] = "gcegnn"
    #: The reference column's row (:mod:`sessionbench.references`); not one of the NARM paper's.
    paper_row: ClassVar[str | None] = "GCE-GNN"
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict[str, Any]] = {"epochs": 1}
    truncate: ClassVar[str] = "last"

    module_: GCEGNNModule | None = None

    def __init__(
        self,
        hidden_size: int = 100,
        hop: int = 1,
        n_neighbours: int = 12,
        dropout_gcn: float = 0.0,
        dropout_local: float = 0.0,
        dropout_global: float = 0.5,
        learning_rate: float = 0.001,
        l2: float = 1e-5,
        lr_decay: float = 0.1,
        lr_decay_step: int = 3,
        batch_size: int = 100,
        epochs: int = 20,
        patience: int | None = 3,
        max_length: int = 200,
        validation: str = "recent",
        validation_fraction: float = 0.1,
        refit: bool = True,
        selection: str = "validation",
        precision: str = "auto",
    ) -> None:
        self.hidden_size, self.hop, self.n_neighbours = hidden_size, hop, n_neighbours
        self.dropout_gcn, self.dropout_local, self.dropout_global = dropout_gcn, dropout_local, dropout_global
        self.learning_rate, self.l2, self.lr_decay, self.lr_decay_step = learning_rate, l2, lr_decay, lr_decay_step
        self.batch_size, self.epochs, self.patience, self.max_length = batch_size, epochs, patience, max_length
        self.validation, self.validation_fraction, self.refit = validation, validation_fraction, refit
        self.selection, self.precision = selection, precision
        check_params(
            self, hidden_size=POSITIVE_INT, hop=POSITIVE_INT, n_neighbours=POSITIVE_INT, dropout_gcn=FRACTION,
            dropout_local=FRACTION, dropout_global=FRACTION, l2=NON_NEGATIVE, lr_decay=UNIT, lr_decay_step=POSITIVE_INT,
            max_length=POSITIVE_INT, **PROTOCOL_RULES,
        )

    @classmethod
    def defaults_for(cls, dataset: str) -> dict[str, Any]:
        """The code's per-dataset overrides (``main.py``): DIGINETICA hop 2 and dropout_gcn 0.2;
        Tmall dropout_gcn 0.6 and dropout_local 0.5; elsewhere the constructor's."""
        if dataset.startswith("diginetica"):
            return {"hop": 2, "dropout_gcn": 0.2}
        if dataset.startswith("tmall"):
            return {"dropout_gcn": 0.6, "dropout_local": 0.5}
        return {}

    def _learn_from(self, sessions: Sessions, seed: int) -> None:
        """The global graph of this phase's training sessions, sampled with the run's seed."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, len(sessions)]))
        self._graph = global_graph(sessions, self.n_items_, self.n_neighbours, rng)

    def _new_module(self, n_items: int, generator: torch.Generator) -> GCEGNNModule:
        module = GCEGNNModule(
            n_items, self.hidden_size, self.hop, self.n_neighbours, self.dropout_gcn, self.dropout_local,
            self.dropout_global, self.max_length, generator,
        )
        if getattr(self, "_graph", None) is not None:
            module.set_global_graph(*self._graph)
        return module

    def _loss(self, items: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Eq. 11-12: the cross-entropy of the softmax of S . h_v over every item, fused."""
        query = self.module_.query(items, lengths, generator)
        return self._item_softmax(query, targets)
