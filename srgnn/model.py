"""SR-GNN: session-based recommendation with graph neural networks (Wu, Tang, Zhu, Wang, Xie &
Tan, AAAI 2019).

Checked against the authors' PyTorch code (github.com/CRIPAC-DIG/SR-GNN at e21cfa4:
``pytorch_code/model.py``, ``utils.py``, ``main.py``). Our own code; nothing is copied.

What is computed for a prefix (d = 100 throughout):

- Its session graph (:mod:`srgnn.graph`): the distinct items as nodes, 0/1 edges between
  consecutive clicks, incoming and outgoing matrices normalised by in- and out-degree.
- One gated GNN step (section 3.3, eq. 1-5, in the code's GRU form; ``step`` = 1):
  a_in = A_in (W_in h + b_in) + b_iah, a_out = A_out (W_out h + b_out) + b_oah;
  g_i = W_ih [a_in; a_out] + b_ih, g_h = W_hh h + b_hh (each split in r, z, n parts);
  r = sigmoid(g_i,r + g_h,r), z = sigmoid(g_i,z + g_h,z), n = tanh(g_i,n + r * g_h,n),
  h' = n + z (h - n). The paper's eq. 4-5 put r before W_hh and swap z and 1 - z; the code is
  PyTorch's GRU convention, and so are we.
- Readout (section 3.4, eq. 6-7): the clicks' node states v_1..v_t in click order; s_l = v_t;
  alpha_i = q^T sigmoid(W_1 v_t + W_2 v_i + c) (``linear_three`` without bias, no softmax);
  s_g = sum_i alpha_i v_i; s_h = W_3 [s_l; s_g] (a d x 2d layer with bias).
- Scores (eq. 8-9): z_i = s_h . v_i over every item's embedding (the input embeddings,
  shared), the logits of the softmax cross-entropy.
- Initialisation: every parameter, embeddings and biases included, uniform in
  [-1/sqrt(d), 1/sqrt(d)] (the code's ``reset_parameters``).
- Training (section 4.2 and ``main.py``): Adam at 0.001 with L2 1e-5 (``weight_decay``),
  the rate multiplied by 0.1 every 3 epochs (epochs 1-3 at 1e-3, 4-6 at 1e-4, ... as the code
  ran under PyTorch 0.4), mini-batches of 100, up to 30 epochs.

Deviations from the paper/reference:

- Epochs are selected on the suite's validation hold-out (early stopping with ``patience`` 3)
  and the model is refit on all of the training data
  (:class:`sessionbench.softmax_models.PrefixSoftmaxModel`); the code tracked the best
  Recall@20 and the best MRR@20 on the test set separately (possibly from different epochs)
  and stopped after 10 epochs without a gain in either, counted over the whole run.
- The padding item is not a node (the code's padded prefixes hold it as an edgeless node that
  the readout masks out: no score changes), and the embedding's padding row is kept at 0. The
  graphs of a batch are packed side by side and the adjacency products are sums over edges
  (:mod:`srgnn.graph`): the code's dense products without their padding.
- The softmax cross-entropy is computed fused over item blocks, in bf16 where the machine does
  it natively (``precision``; :mod:`sessionbench.losses`); the code's was fp32.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from sessionbench.params import NON_NEGATIVE, POSITIVE_INT, UNIT, check_params
from sessionbench.softmax_models import PROTOCOL_RULES, PrefixSoftmaxModel, StepDecayAdam
from srgnn.graph import PackedGraphs, session_graphs

__all__ = ["SRGNN", "SRGNNModule"]


class SRGNNModule(nn.Module):
    """The SR-GNN network: item indices (embedding rows, 0 = padding) -> scores of every item."""

    def __init__(self, n_items: int, hidden_size: int = 100, step: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        d = hidden_size
        self.step = step
        self.embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.edge_in = nn.Linear(d, d)  # W_in, b_in
        self.edge_out = nn.Linear(d, d)  # W_out, b_out
        self.b_iah = nn.Parameter(torch.empty(d))
        self.b_oah = nn.Parameter(torch.empty(d))
        self.w_ih = nn.Linear(2 * d, 3 * d)  # W_ih, b_ih
        self.w_hh = nn.Linear(d, 3 * d)  # W_hh, b_hh
        self.linear_one = nn.Linear(d, d)  # W_1 (of v_t), with c as its bias
        self.linear_two = nn.Linear(d, d)  # W_2 (of v_i)
        self.linear_three = nn.Linear(d, 1, bias=False)  # q
        self.linear_transform = nn.Linear(2 * d, d)  # W_3
        bound = 1.0 / math.sqrt(d)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)
            self.embedding.weight[0].zero_()

    @property
    def item_embeddings(self) -> torch.Tensor:
        """float[n_items, d]: every item's v_i of eq. 8 (padding row excluded), a view."""
        return self.embedding.weight[1:]

    def _cell(self, graphs: PackedGraphs, hidden: torch.Tensor) -> torch.Tensor:
        """One gated GNN step over the nodes' states hidden: float[R, d] (all graphs packed).

        A_in (W_in h + b_in) is, for node v, the sum over its incoming edges u -> v of
        (W_in h_u + b_in) / in-degree(v): the dense product of the code, edge by edge."""
        a_in = torch.zeros_like(hidden).index_add_(
            0, graphs.dst, self.edge_in(hidden)[graphs.src] * graphs.in_weight.unsqueeze(-1)) + self.b_iah
        a_out = torch.zeros_like(hidden).index_add_(
            0, graphs.src, self.edge_out(hidden)[graphs.dst] * graphs.out_weight.unsqueeze(-1)) + self.b_oah
        gi = self.w_ih(torch.cat([a_in, a_out], dim=1))
        gh = self.w_hh(hidden)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        new = torch.tanh(i_n + reset * h_n)
        return new + update * (hidden - new)

    def query(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """s_h of eq. 7: float[B, d], the vector every item's embedding is scored against."""
        graphs = session_graphs(items, lengths, self.embedding.weight.dtype)
        hidden = self.embedding(graphs.node_item)
        for _ in range(self.step):
            hidden = self._cell(graphs, hidden)
        clicks = hidden[graphs.click_node]  # v_i of every real click, prefix by prefix in click order
        last = clicks[torch.cumsum(lengths, 0) - 1]  # s_l = v_t
        alpha = self.linear_three(torch.sigmoid(self.linear_one(last)[graphs.click_row] + self.linear_two(clicks)))
        global_ = torch.zeros_like(last).index_add_(0, graphs.click_row, alpha * clicks)  # s_g
        return self.linear_transform(torch.cat([global_, last], dim=1))

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every item after each prefix: float[B, n_items]."""
        return self.query(items, lengths) @ self.item_embeddings.T


class SRGNN(StepDecayAdam, PrefixSoftmaxModel):
    """SR-GNN (Wu et al., AAAI 2019) under the suite's protocol; see the module docstring.

    Args:
        hidden_size: d, the size of the item embeddings and the node states (100).
        step: Gated GNN steps per prefix (1).
        learning_rate: Adam's initial step size (0.001).
        l2: Adam's weight decay, the L2 penalty on every parameter (1e-5).
        lr_decay: Factor applied to the rate every ``lr_decay_step`` epochs (0.1).
        lr_decay_step: Epochs between decays (3).
        batch_size: Prefixes per mini-batch (100).
        epochs: Most epochs of the selection run (30).
        patience: Stop the selection run after this many epochs without a better validation
            Recall@20 (None: run every epoch).
        validation, validation_fraction, refit, selection, precision: as for NARM
            (:class:`sessionbench.softmax_models.PrefixSoftmaxModel`).
    """

    name: ClassVar[str] = "srgnn"
    #: The reference column's row (:mod:`sessionbench.references`); not one of the NARM paper's.
    paper_row: ClassVar[str | None] = "SR-GNN"
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict[str, Any]] = {"epochs": 1}
    #: Prefixes are never cut (the code kept every click).
    max_length: ClassVar[None] = None
    truncate: ClassVar[str] = "last"

    module_: SRGNNModule | None = None

    def __init__(
        self,
        hidden_size: int = 100,
        step: int = 1,
        learning_rate: float = 0.001,
        l2: float = 1e-5,
        lr_decay: float = 0.1,
        lr_decay_step: int = 3,
        batch_size: int = 100,
        epochs: int = 30,
        patience: int | None = 3,
        validation: str = "recent",
        validation_fraction: float = 0.1,
        refit: bool = True,
        selection: str = "validation",
        precision: str = "auto",
    ) -> None:
        self.hidden_size = hidden_size
        self.step = step
        self.learning_rate = learning_rate
        self.l2 = l2
        self.lr_decay = lr_decay
        self.lr_decay_step = lr_decay_step
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation = validation
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.selection = selection
        self.precision = precision
        check_params(
            self, hidden_size=POSITIVE_INT, step=POSITIVE_INT, l2=NON_NEGATIVE, lr_decay=UNIT, lr_decay_step=POSITIVE_INT,
            **PROTOCOL_RULES,
        )

    def _new_module(self, n_items: int, generator: torch.Generator) -> SRGNNModule:
        return SRGNNModule(n_items, self.hidden_size, self.step, generator)

    def _loss(self, items: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Eq. 9's cross-entropy of the softmax of s_h . v_i over every item, fused."""
        query = self.module_.query(items, lengths)
        return self._item_softmax(query, targets)
