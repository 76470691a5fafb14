"""NARM (Li et al., CIKM 2017) as a recommender: training, validation, scoring, attention.

The network is in :mod:`narm.model`; this file holds what the paper's section 4.4 says about
training and the loss of eq. 11: cross-entropy of the softmax over all items, Adam with
learning rate 0.001, mini-batches of 512, up to 30 epochs, 10% of the training sequences held
out to pick the epoch with the best validation Recall@20. The loop, the hold-out, the refit,
scoring and saving are shared with the other full-softmax models
(:class:`sessionbench.softmax_models.PrefixSoftmaxModel`). Checked against the authors' code
(github.com/lijingsdu/sessionRec_NARM ``NARM.py`` at 4db2a4404eddd65523e4b4e1d26af1eba8846dce,
``rsc2015_attention.py`` at be0d1a37cc94) and RecBole's NARM (f00b4071e574).

Registered variants: ``narm`` (hybrid encoder, bi-linear decoder), ``narm-global`` and
``narm-local`` (Table 4's encoders), ``narm-fc`` (Table 2's fully connected decoder);
``hidden_size`` is Table 4's d.

Where the code and the paper differ, both are options (defaults follow the paper):

- ``attention_norm``: "none" leaves alpha unnormalised (eq. 7), "softmax" normalises it (code).
- ``truncate``: prefixes longer than ``max_length`` = 19 keep their "last" clicks (the paper
  does not say which; the last clicks are what a next-click model needs) or their "first"
  (code, in training, validation and test alike).
- ``validation``: the "recent" 10% of the training prefixes, as whole sessions at the end of
  the time-sorted training data, or a "random" 10% of the prefixes (code; prefixes of one
  session then fall on both sides).

Deviations from the paper/reference (see also :mod:`narm.model`):

- Early stopping with ``patience`` epochs; the code effectively ran all 30 epochs (its
  patience was 100 and counted only after epoch 10) and kept the best one, as we do.
- Validation Recall@20 counts ties against the target; the code counted them for it (no
  difference for float scores in practice).
- The code's loss is -log(softmax + 1e-8); ours is the exact log-softmax cross-entropy,
  computed together with its gradient, chunk by chunk on the CPU (:func:`sessionbench.losses.softmax_cross_entropy`).
- ``refit=True`` (the default, the suite's protocol for every trained model): after the
  epochs are selected on the hold-out, the reported network is trained again from the same
  initial weights on all of the training cases for the selected number of epochs. The code
  reported the best epoch of its run on the 90% left after the hold-out (``refit=False``).
- Where the CPU or GPU does bf16 natively, ``precision="auto"`` (the default) computes the
  training loss's three products with every item in bf16 with fp32 accumulation and the softmax
  in fp32 (:mod:`sessionbench.precision`); the code trained in float32. ``precision="fp32"``
  trains as the code did. Scores for evaluation are fp32 either way.
- The embedding dropout's masks are drawn for the real clicks only (the rows of the packed
  sequence), not for the padding: the same distribution, other random numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from narm.model import ATTENTION_NORMS, NARMModule
from sessionbench.cases import truncate
from sessionbench.data import Split
from sessionbench.losses import linear_softmax_cross_entropy
from sessionbench.params import FRACTION, POSITIVE_INT, check_params, one_of
from sessionbench.recommender import PrefixBatch, Recommender
from sessionbench.softmax_models import PROTOCOL_RULES, PrefixSoftmaxModel

__all__ = ["NARM", "NARMFC", "NARMGlobal", "NARMLocal", "truncate"]


TRUNCATIONS = ("last", "first")


class NARM(PrefixSoftmaxModel):
    """Neural Attentive Recommendation Machine: hybrid encoder, bi-linear decoder.

    Args:
        embedding_size: Item embedding size (section 4.4: 50).
        hidden_size: GRU units (section 4.4: 100; Table 4's d is 50 or 100).
        embedding_dropout: Dropout between the embeddings and the GRU (section 4.4: 25%).
        context_dropout: Dropout between the encoder and the decoder (section 4.4: 50%).
        learning_rate: Adam's learning rate (section 4.4: 0.001).
        batch_size: Mini-batch size (section 4.4: 512).
        epochs: Most epochs run (section 4.4: 30).
        patience: Stop after this many epochs without a better validation Recall@20 (the paper
            gives none; 3 ends DIGINETICA in about 10 epochs); None runs every epoch.
        max_length: Clicks kept of longer prefixes, in training and scoring (the code: 19).
        truncate: Which clicks of a longer prefix are kept: "last" or "first" (the code).
        attention_norm: "none" (alpha unnormalised, eq. 7) or "softmax" (the code).
        validation: Held-out prefixes: "recent" (the last sessions by time) or "random" (code).
        validation_fraction: Share of the training prefixes held out (section 4.4: 10%).
        refit: The suite's fair protocol (True, the default): the epochs are selected on the
            held-out cases (early stopping on their Recall@20), then a network from the same
            initial weights is trained on every training case for the selected number of
            epochs, and that one is the reported model. False: the reported model is the best
            epoch of the run on the 90% left after the hold-out (the authors' code).
        selection: "validation" (the default; as ``validation`` and ``refit`` say) or
            "test-best": the authors' scripts' reading, labelled on every page, never in
            Table 3: every training case, the epoch of best test Recall@20 kept
            (:class:`sessionbench.softmax_models.PrefixSoftmaxModel`).
        precision: Of the training step's scoring products (eq. 10-11 and their gradients):
            "auto" (bf16 inputs with fp32 accumulation where the CPU or GPU does bf16
            natively, else fp32), "fp32" or "bf16" (:mod:`sessionbench.precision`). Scores
            for evaluation are fp32 whatever the training used.
    """

    name: ClassVar[str] = "narm"
    paper_row: ClassVar[str | None] = "NARM"
    suites: ClassVar[tuple[str, ...]] = ("main", "ablations")
    quick_params: ClassVar[dict[str, Any]] = {"epochs": 1}
    #: Table 4 compares the encoders at hidden sizes d = 50 and 100.
    suite_params: ClassVar[dict[str, list[dict[str, Any]]]] = {"ablations": [{"hidden_size": 50}, {"hidden_size": 100}]}
    paper_tables: ClassVar[dict[str, str]] = {"table2": "bi-linear", "table4": "hybrid"}
    #: Encoder and decoder of this variant (see :class:`narm.model.NARMModule`).
    encoder: ClassVar[str] = "hybrid"
    decoder: ClassVar[str] = "bilinear"

    module_: NARMModule | None = None  # the reported network (see PrefixSoftmaxModel for the rest)

    def __init__(
        self,
        embedding_size: int = 50,
        hidden_size: int = 100,
        embedding_dropout: float = 0.25,
        context_dropout: float = 0.5,
        learning_rate: float = 0.001,
        batch_size: int = 512,
        epochs: int = 30,
        patience: int | None = 3,
        max_length: int = 19,
        truncate: str = "last",
        attention_norm: str = "none",
        validation: str = "recent",
        validation_fraction: float = 0.1,
        refit: bool = True,
        selection: str = "validation",
        precision: str = "auto",
    ) -> None:
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.embedding_dropout = embedding_dropout
        self.context_dropout = context_dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.max_length = max_length
        self.truncate = truncate
        self.attention_norm = attention_norm
        self.validation = validation
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.selection = selection
        self.precision = precision
        check_params(
            self, embedding_size=POSITIVE_INT, hidden_size=POSITIVE_INT, embedding_dropout=FRACTION,
            context_dropout=FRACTION, max_length=POSITIVE_INT, truncate=one_of(*TRUNCATIONS),
            attention_norm=one_of(*ATTENTION_NORMS), **PROTOCOL_RULES,
        )

    def _new_module(self, n_items: int, generator: torch.Generator) -> NARMModule:
        return NARMModule(
            n_items,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            encoder=self.encoder,
            decoder=self.decoder,
            attention_norm=self.attention_norm,
            embedding_dropout=self.embedding_dropout,
            context_dropout=self.context_dropout,
            generator=generator,
        )

    def _loss(self, items: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loss of eq. 11 for one batch."""
        context, _ = self.module_.encode(items, lengths, generator)
        if self.decoder == "bilinear":
            # paper eq. 10-11 fused: softmax over emb_i^T (B c_t) for all items, and its gradient
            query = self.module_.query(context)
            return self._item_softmax(query, targets)
        # eq. 11 over the FC scores
        return linear_softmax_cross_entropy(context, self.module_.fc, targets, precision=self.precision_)

    # ------------------------------------------------------------------------------ scoring
    def score(self, batch: PrefixBatch) -> torch.Tensor:
        """Scores of every item (eq. 10 before the softmax): float32[B, n_items]."""
        return super().score(batch)

    def attention(self, batch: PrefixBatch) -> np.ndarray:
        """alpha_tj (eq. 7-8) over the clicks of each prefix: float32[B, L], 0 on padding.

        Column j is click j of the batch as given; clicks cut off by ``max_length`` get 0.

        Raises:
            NotImplementedError: the global encoder has no attention.
        """
        from narm.attention import attention_weights

        return attention_weights(self, batch)

    def attention_figure(self, split: Split, path: Path) -> Path:
        """The paper's Figure 6: attention weights of a few test sessions, as a PNG heatmap."""
        from narm.attention import attention_figure

        return attention_figure(self, split, Path(path))


class NARMGlobal(NARM):
    """NARM_global of Table 4: the last hidden state only (eq. 5), no attention."""

    name: ClassVar[str] = "narm-global"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("ablations",)
    paper_tables: ClassVar[dict[str, str]] = {"table4": "global"}
    encoder: ClassVar[str] = "global"
    # no attention, so no Figure 6: the base class's hook tells the harness to skip it
    attention_figure = Recommender.attention_figure


class NARMLocal(NARM):
    """NARM_local of Table 4: the attention-weighted states only (eq. 6); h_t queries the
    attention but has no direct path to the decoder."""

    name: ClassVar[str] = "narm-local"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("ablations",)
    paper_tables: ClassVar[dict[str, str]] = {"table4": "local"}
    encoder: ClassVar[str] = "local"


class NARMFC(NARM):
    """NARM with Table 2's fully connected decoder: scores = U c_t + b over all items."""

    name: ClassVar[str] = "narm-fc"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("ablations",)
    suite_params: ClassVar[dict[str, list[dict[str, Any]]]] = {}  # Table 2 is at d = 100 only
    paper_tables: ClassVar[dict[str, str]] = {"table2": "fully connected"}
    decoder: ClassVar[str] = "fc"

