"""STAMP: Short-Term Attention/Memory Priority (Liu, Zeng, Mokhosi & Zhang, KDD 2018).

Checked against the authors' TensorFlow code (github.com/uestcnlp/STAMP at c0233b6:
``model/STAMP_rsc.py``, ``model/STAMP_cikm.py``, ``basic_layer/FwNn3AttLayer.py``) and read
beside RecBole's ``stamp.py`` (025907c). Our own code; nothing is copied.

What is computed for a prefix x_1..x_t (item embeddings, d = 100; section 3 of the paper):

- m_s = 1/t sum_i x_i, the mean of every click of the prefix, the last included (eq. 2);
  m_t = x_t, the last click.
- Attention (eq. 7): alpha_i = w_0^T sigmoid(W_1 x_i + W_2 x_t + W_3 m_s), unnormalised (the
  code's ``norm_type='none'``), without the paper's bias b_a (the code's layer has none).
- m_a = sum_i alpha_i x_i + m_s: the code adds m_s to the attention-weighted memory (eq. 8
  has only the sum; RecBole does the same as the code).
- h_s = tanh(W_s m_a), h_t = tanh(W_t m_t) (eq. 3-4 with the code's MLP cells: no biases).
- Scores (eq. 9): z_i = <h_s, h_t, x_i> = (h_s * h_t) . x_i for every item, the logits of the
  softmax cross-entropy (eq. 10-11). The paper writes sigma(...) around the trilinear product;
  the code feeds the raw product to ``sparse_softmax_cross_entropy`` (and so do we).
- The embeddings looked up as inputs are clipped to L2 norm ``max_norm`` (the code's
  ``embedding_lookup(..., max_norm=...)``: 1.5 in its DIGINETICA file, 1.0 in its YOOCHOOSE
  one); the output table x_i of eq. 9 is not clipped, as in the code.
- Initialisation: embeddings N(0, 0.002), every weight matrix N(0, 0.05) (the code's
  ``emb_stddev`` and ``stddev``); the padding row is zero.
- Training (section 4.3; the code's ``config/nn_param.conf`` and the three result logs in its
  ``output/text/``): Adam on the gradient of the batch's *summed* loss (the code's ``self.loss``
  is the unreduced per-prefix vector), each parameter's gradient clipped to norm
  ``max_grad_norm``, mini-batches of 512, no L2, up to 10 epochs (the code's default ``-e 10``).
  Rate and clipping as the run behind each published number logged them
  (:meth:`STAMP.defaults_for`): YOOCHOOSE 1/64 0.003 and 150 (its log's Recall@20 68.75 is the
  paper's 68.74), YOOCHOOSE 1/4 0.005 and 10, DIGINETICA 0.005 and 110; elsewhere (Tmall,
  Nowplaying, synthetic data) the shipped ``stamp_rsc`` config's 0.003 and 150. The paper's
  section 4.3 says 0.005 for all.

Deviations from the paper/reference:

- Epochs are selected on the suite's validation hold-out and the model is refit on all of the
  training data (:class:`sessionbench.softmax_models.PrefixSoftmaxModel`); the code kept the
  epoch of best Recall@20 on the test set.
- Mini-batches are random prefixes of any length, padded; the code grouped sessions by length
  and stepped once per prefix position of a group (no padding). The same cases, in another
  order and grouping.
- The softmax cross-entropy is computed fused over item blocks, in bf16 where the machine does
  it natively (``precision``; :mod:`sessionbench.losses`); the code's was fp32.
- STMP (the paper's variant without attention) is not provided.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from sessionbench.params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_params, optional
from sessionbench.softmax_models import PROTOCOL_RULES, PrefixSoftmaxModel

__all__ = ["STAMP", "STAMPModule"]


class STAMPModule(nn.Module):
    """The STAMP network: item indices (embedding rows, 0 = padding) -> scores of every item."""

    def __init__(self, n_items: int, embedding_size: int = 100, max_norm: float | None = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        d = embedding_size
        self.max_norm = max_norm
        self.embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.w1 = nn.Linear(d, d, bias=False)  # W_1 x_i
        self.w2 = nn.Linear(d, d, bias=False)  # W_2 x_t
        self.w3 = nn.Linear(d, d, bias=False)  # W_3 m_s
        self.w0 = nn.Linear(d, 1, bias=False)  # w_0
        self.ws = nn.Linear(d, d, bias=False)  # W_s (h_s)
        self.wt = nn.Linear(d, d, bias=False)  # W_t (h_t)
        with torch.no_grad():
            self.embedding.weight.normal_(0.0, 0.002, generator=generator)
            self.embedding.weight[0].zero_()
            for layer in (self.w1, self.w2, self.w3, self.w0, self.ws, self.wt):
                layer.weight.normal_(0.0, 0.05, generator=generator)

    @property
    def item_embeddings(self) -> torch.Tensor:
        """float[n_items, d]: the output table x_i of eq. 9 (padding row excluded), a view."""
        return self.embedding.weight[1:]

    def _inputs(self, items: torch.Tensor) -> torch.Tensor:
        """The clicks' embeddings, each clipped to norm ``max_norm``."""
        x = self.embedding(items)
        if self.max_norm is None:
            return x
        norm = x.norm(dim=-1, keepdim=True)
        return x * torch.clamp(self.max_norm / norm.clamp_min(1e-12), max=1.0)

    def query(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h_s * h_t: float[B, d], the vector every item's x_i is scored against (eq. 9).

        Computed over the real clicks only, packed (a prefix's padding costs nothing)."""
        real = torch.arange(items.shape[1], device=items.device)[None, :] < lengths[:, None]
        row = torch.arange(len(items), device=items.device)[:, None].expand_as(items)[real]  # the prefix of each click
        x = self._inputs(items[real])  # [R, d], the real clicks in row order
        last = x[torch.cumsum(lengths, 0) - 1]  # m_t = x_t
        mean = torch.zeros_like(last).index_add_(0, row, x) / lengths.unsqueeze(-1).to(x.dtype)  # m_s
        alpha = self.w0(torch.sigmoid(self.w1(x) + (self.w2(last) + self.w3(mean))[row]))  # [R, 1]
        memory = torch.zeros_like(last).index_add_(0, row, alpha * x) + mean  # m_a, with the code's + m_s
        return torch.tanh(self.ws(memory)) * torch.tanh(self.wt(last))

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every item after each prefix: float[B, n_items]."""
        return self.query(items, lengths) @ self.item_embeddings.T


class STAMP(PrefixSoftmaxModel):
    """STAMP (Liu et al., KDD 2018) under the suite's protocol; see the module docstring.

    Args:
        embedding_size: d, the size of the item embeddings and every hidden vector (100).
        learning_rate: Adam's step size (0.003, the shipped config's; per dataset from
            :meth:`defaults_for`).
        batch_size: Prefixes per mini-batch (512).
        epochs: Most epochs of the selection run (the code's default 10).
        patience: Stop the selection run after this many epochs without a better validation
            Recall@20 (None: run every epoch).
        max_norm: L2 norm the input embeddings are clipped to (None: no clipping). 1.0, the
            code's YOOCHOOSE setting; DIGINETICA's 1.5 comes from :meth:`defaults_for`.
        max_grad_norm: Each parameter's gradient, of the batch's summed loss as in the code, is
            clipped to this norm (0: no clipping); 150, the shipped config's; per dataset from
            :meth:`defaults_for`.
        validation, validation_fraction, refit, selection, precision: as for NARM
            (:class:`sessionbench.softmax_models.PrefixSoftmaxModel`).
    """

    name: ClassVar[str] = "stamp"
    #: The reference column's row (:mod:`sessionbench.references`); not one of the NARM paper's.
    paper_row: ClassVar[str | None] = "STAMP"
    suites: ClassVar[tuple[str, ...]] = ("main",)
    quick_params: ClassVar[dict[str, Any]] = {"epochs": 1}
    #: Prefixes are never cut (the code kept every click).
    max_length: ClassVar[None] = None
    truncate: ClassVar[str] = "last"

    module_: STAMPModule | None = None

    def __init__(
        self,
        embedding_size: int = 100,
        learning_rate: float = 0.003,
        batch_size: int = 512,
        epochs: int = 10,
        patience: int | None = 3,
        max_norm: float | None = 1.0,
        max_grad_norm: float = 150.0,
        validation: str = "recent",
        validation_fraction: float = 0.1,
        refit: bool = True,
        selection: str = "validation",
        precision: str = "auto",
    ) -> None:
        self.embedding_size = embedding_size
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.max_norm = max_norm
        self.max_grad_norm = max_grad_norm
        self.validation = validation
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.selection = selection
        self.precision = precision
        check_params(
            self, embedding_size=POSITIVE_INT, max_norm=optional(POSITIVE), max_grad_norm=NON_NEGATIVE, **PROTOCOL_RULES
        )

    @classmethod
    def defaults_for(cls, dataset: str) -> dict[str, Any]:
        """The settings of the authors' logged run on each of their datasets (``output/text/``
        at c0233b6): DIGINETICA (``cikm16``, ``STAMP_cikm.py``) inputs clipped to norm 1.5,
        gradients to 110, rate 0.005; YOOCHOOSE 1/4 (``rsc15_4``) gradients to 10, rate 0.005.
        YOOCHOOSE 1/64's log (rate 0.003, gradients to 150, inputs to 1) is the shipped
        ``stamp_rsc`` config, the constructor's, which every other dataset takes too."""
        if dataset.startswith("diginetica"):
            return {"max_norm": 1.5, "max_grad_norm": 110.0, "learning_rate": 0.005}
        if dataset.startswith("yoochoose-1-4"):
            return {"max_grad_norm": 10.0, "learning_rate": 0.005}
        return {}

    def _new_module(self, n_items: int, generator: torch.Generator) -> STAMPModule:
        return STAMPModule(n_items, self.embedding_size, self.max_norm, generator)

    def _loss(self, items: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Eq. 10-11: the softmax cross-entropy of (h_s * h_t) . x_i over every item, fused."""
        query = self.module_.query(items, lengths)
        return self._item_softmax(query, targets)

    def _prepare_gradients(self, n_cases: int) -> None:
        """The code's gradients: those of the batch's summed loss, each parameter's clipped to
        norm ``max_grad_norm`` on its own.

        The code hands Adam the gradient of its per-prefix loss vector (``self.loss`` is
        ``sparse_softmax_cross_entropy_with_logits`` unreduced, and TensorFlow differentiates
        a vector through its sum), clipped by ``tf.clip_by_norm(g, max_grad_norm)``: t *
        max_grad_norm / max(||t||, max_grad_norm). Our loss is the batch mean, so its gradients
        are scaled by ``n_cases`` first; the clip then bites as the code's does (at 150 the
        mean's gradient would almost never reach it), and Adam sees the code's magnitudes, its
        epsilon included. One pass over each gradient."""
        for p in self.module_.parameters():
            if p.grad is None:
                continue
            scale = float(n_cases)
            if self.max_grad_norm:
                norm = float(p.grad.norm()) * n_cases
                scale *= self.max_grad_norm / max(norm, self.max_grad_norm)
            p.grad.mul_(scale)
