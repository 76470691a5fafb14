"""Improved GRU4Rec: a GRU over padded prefixes with a full softmax (the NARM paper's
"Improved GRU-Rec").

Paper: Tan, Xu & Liu, "Improved Recurrent Neural Networks for Session-based Recommendations",
DLRS 2016. No reference code was published; this follows the paper's text.

What is computed:

- Data augmentation (Sec. 3.1): every prefix of a training session is a training sequence with
  the next click as its label (the protocol's own expansion), and each input click is dropped
  with probability ``click_dropout`` ("embedding dropout": the dropped click's embedding is
  zero), drawn afresh for every mini-batch.
- Model (Sec. 3, 4.1): item embedding -> one GRU layer of 100 units -> last hidden state h_t ->
  scores W h_t + b over all items; loss: softmax cross-entropy over all items,
  -log softmax(W h_t + b)_target, computed block by block with its gradient
  (:func:`sessionbench.losses.linear_softmax_cross_entropy`: on the CPU all logits are never
  held at once). Mini-batches of padded prefixes in random order (not session-parallel), Adam,
  sequences truncated to their last 19 clicks (the BPTT length).
- Shift in the input distribution (Sec. 3.2): when the split keeps only the most recent
  fraction of the training data (YOOCHOOSE 1/64, 1/4 from raw clicks: ``split.full_train`` is
  set), the model is first trained on the whole training data and then fine-tuned on the
  fraction. Nothing to do where the training data is not a fraction (DIGINETICA, the default
  synthetic data). The preprocessed YOOCHOOSE files hold the fraction without the older
  sessions: ``pretrain=True`` refuses them, ``pretrain="if-available"`` trains on the fraction
  alone. ``fit_report_["pretrain"]`` says which applied, for the result and its page.

Defaults the paper does not print, chosen here (our choices):

- ``click_dropout=0.25``: the paper tunes it without printing the value; 0.25 is the usual
  embedding-dropout rate of this period (and NARM's embedding dropout).
- ``embedding_size=100``: the input embedding as wide as the GRU.
- ``learning_rate=0.001``, ``batch_size=512``: Adam's default rate and the batch size of the
  other full-softmax model here (NARM), so that the two differ only in the architecture.
- ``epochs=10``, no early stopping: the same fixed budget as GRU4Rec's reference; the fixed
  count keeps all of the training data for training. ``pretrain_epochs=5`` on the whole data
  before fine-tuning (the whole data is 4-64 times the fraction).
- Weights: embedding and output matrix uniform on +-sqrt(6 / (fan_in + fan_out)) as in
  GRU4Rec, output bias 0, GRU weights uniform on +-1/sqrt(100) (PyTorch's GRU default).

Deviations from the paper/reference:

- The paper's privileged-information (generalised distillation) and embedding-output variants
  (Sec. 3.3, 3.4) are not implemented: the NARM paper compares with the model above.
- Scoring also keeps only the last 19 clicks of a prefix (the model never saw longer ones), and
  a click on an item without training data enters as a dropped click (zero embedding). Items
  without training data score :data:`~baselines.gru4rec.UNSEEN_SCORE`.
- Fine-tuning starts a fresh Adam state (the paper does not say).
- Where the CPU or GPU does bf16 natively, ``precision="auto"`` (the default) computes the
  softmax loss's products with every item in bf16 with fp32 accumulation
  (:mod:`sessionbench.precision`); ``precision="fp32"`` trains in fp32 throughout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from baselines.gru4rec import UNSEEN_SCORE, item_index
from sessionbench.data import DATASETS, Sessions, Split
from sessionbench.losses import linear_softmax_cross_entropy
from sessionbench.params import FRACTION, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, check_params, one_of
from sessionbench.precision import PRECISIONS, resolve_precision
from sessionbench.recommender import PAD, PrefixBatch, Recommender
from sessionbench.training import (
    adam_options,
    fit_checkpoint,
    generators,
    prefix_batches,
    resolve_device,
    resumed,
    train_epochs,
    weights_generator,
)

__all__ = ["ImprovedGRU4Rec", "ImprovedGRU4RecNet"]


class ImprovedGRU4RecNet(nn.Module):
    """Embedding -> GRU -> last state -> scores over all items.

    Args:
        n_items: Number of items scored (the training items).
        embedding_size: Input embedding size.
        hidden_size: GRU units.
        generator: Source of the initial weights.
    """

    def __init__(self, n_items: int, embedding_size: int, hidden_size: int, generator: torch.Generator):
        super().__init__()
        # built on the meta device, so that torch's global generator is never drawn from, then
        # initialised from ours (SPEC 7)
        self.embedding = nn.Embedding(n_items + 1, embedding_size, padding_idx=0, device="meta")
        self.gru = nn.GRU(embedding_size, hidden_size, batch_first=True, device="meta")
        self.output = nn.Linear(hidden_size, n_items, device="meta")
        self.to_empty(device="cpu")
        with torch.no_grad():
            for weight in (self.embedding.weight, self.output.weight):
                bound = (6.0 / sum(weight.shape)) ** 0.5  # fan_in + fan_out
                weight.uniform_(-bound, bound, generator=generator)
            self.embedding.weight[0] = 0.0  # row 0: padding and dropped clicks
            self.output.bias.zero_()
            for p in self.gru.parameters():
                p.uniform_(-(hidden_size**-0.5), hidden_size**-0.5, generator=generator)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores after each sequence: float[B, n_items], W h_t + b (the softmax's logits).

        Args as for :meth:`last_state`.
        """
        return self.output(self.last_state(items, lengths))

    def last_state(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h_t, the GRU state after each sequence's last click: float[B, hidden_size].

        Args:
            items: int64[B, L] compact item index + 1, left aligned; 0 = padding or dropped.
            lengths: int64[B] positions used per row (>= 1).
        """
        # packed: the GRU steps each row only through its own clicks (the mean prefix is ~4
        # clicks, the padded width up to 19), and h_n is each row's state after its last click
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(items), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, last = self.gru(packed)
        return last[0]


class ImprovedGRU4Rec(Recommender):
    """Tan et al.'s improved GRU4Rec: prefix augmentation, click dropout, full softmax, and
    pre-training on the whole data when the split is a recent fraction of it.

    Args:
        embedding_size: Input item embedding size (our choice: 100).
        hidden_size: GRU units (paper Sec. 4.1: one layer of 100).
        click_dropout: Probability of dropping each input click (paper Sec. 3.1; our 0.25).
        learning_rate: Adam step size (our choice: 0.001).
        batch_size: Prefixes per mini-batch (our choice: 512).
        max_length: Keep the last this many clicks of a prefix (paper: BPTT of 19 steps).
        epochs: Epochs on ``split.train`` (the fine-tuning when pre-training).
        pretrain: Pre-train on the whole training data when the split is a recent fraction of it
            (paper Sec. 3.2). True: a fraction must come with it (``split.full_train``), else
            fit raises; "if-available": without it, train on the fraction alone; False: never.
        pretrain_epochs: Epochs of pre-training on the whole training data.
        precision: Of the training loss's products with every item: "auto" (bf16 inputs,
            fp32 accumulation, where the CPU or GPU does bf16 natively; else fp32), "fp32" or
            "bf16" (:mod:`sessionbench.precision`). Scoring is fp32 always.
    """

    name: ClassVar[str] = "gru4rec-improved"
    paper_row: ClassVar[str | None] = "Improved GRU-Rec"
    quick_params: ClassVar[dict[str, Any]] = {"epochs": 1, "pretrain_epochs": 1}

    net_: ImprovedGRU4RecNet | None = None  # the trained network over the training items
    item_map_: torch.Tensor | None = None  # int64[n_items]: compact index of each item, -1 if unseen
    known_: torch.Tensor | None = None  # int64[n_known]: item index of each compact index
    n_items_: int | None = None  # width of the score matrix
    history_: list | None = None  # EpochLog per epoch run (pretraining first): loss, seconds
    resumed_: dict | None = None  # {"epochs", "seconds"} taken from a checkpoint by the last fit
    fit_report_: dict[str, str] | None = None  # {"pretrain": the pre-training the last fit did, in words}
    precision_: str | None = None  # "fp32" or "bf16": what ``precision`` meant in the last fit

    def __init__(
        self,
        embedding_size: int = 100,
        hidden_size: int = 100,
        click_dropout: float = 0.25,
        learning_rate: float = 0.001,
        batch_size: int = 512,
        max_length: int = 19,
        epochs: int = 10,
        pretrain: bool | str = True,
        pretrain_epochs: int = 5,
        precision: str = "auto",
    ) -> None:
        self.embedding_size, self.hidden_size, self.click_dropout = embedding_size, hidden_size, click_dropout
        self.learning_rate, self.batch_size, self.max_length = learning_rate, batch_size, max_length
        self.epochs, self.pretrain, self.pretrain_epochs = epochs, pretrain, pretrain_epochs
        self.precision = precision
        check_params(
            self, embedding_size=POSITIVE_INT, hidden_size=POSITIVE_INT, click_dropout=FRACTION, learning_rate=POSITIVE,
            batch_size=POSITIVE_INT, max_length=POSITIVE_INT, epochs=POSITIVE_INT,
            pretrain=one_of(True, False, "if-available"), pretrain_epochs=NON_NEGATIVE_INT,
            precision=one_of(*PRECISIONS),
        )

    def fit(
        self,
        split: Split,
        *,
        seed: int,
        device: str = "cpu",
        progress: bool = True,
        checkpoint: str | Path | None = None,
    ) -> ImprovedGRU4Rec:
        """Pre-train on the whole training data (when ``pretrain``), then train on ``split.train``.

        Args:
            checkpoint: A file to save the training in after every epoch of either phase; a
                later fit of the same training resumes from it (see
                :class:`sessionbench.training.Checkpoint`).

        Raises:
            ValueError: ``pretrain=True`` and ``split`` is a recent fraction without its whole
                training data (``split.full_train`` is None, as for preprocessed YOOCHOOSE).
        """
        pretraining, report = self._pretraining(split)
        self.fit_report_ = {"pretrain": report}
        dev = resolve_device(device)
        self.device = str(dev)
        self.precision_ = resolve_precision(self.precision, dev)
        rng, gen = generators(seed, dev)
        seen = [split.train.items] + ([split.full_train.items] if pretraining else [])
        counts = sum(np.bincount(items, minlength=split.n_items) for items in seen)
        known, compact = item_index(counts)
        init = weights_generator(gen)  # the weights are drawn on the CPU, whatever the device
        self.net_ = ImprovedGRU4RecNet(len(known), self.embedding_size, self.hidden_size, init).to(dev)
        self.item_map_, self.known_ = torch.from_numpy(compact).to(dev), torch.from_numpy(known).to(dev)
        self.n_items_ = split.n_items
        # one loop over both phases, each with a fresh Adam, so that one checkpoint holds them
        phases = ([(split.full_train, self.pretrain_epochs)] if pretraining else []) + [(split.train, self.epochs)]
        optimizers = [torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate, **adam_options(dev)) for _ in phases]
        phase_of = [i for i, (_, epochs) in enumerate(phases) for _ in range(epochs)]

        def run_epoch(epoch: int) -> float:
            return self._run_epoch(phases[phase_of[epoch]][0], optimizers[phase_of[epoch]], rng, gen)

        state = {"rng": rng, "dropout": gen, **{f"optimizer{i}": opt for i, opt in enumerate(optimizers)}}
        saved = fit_checkpoint(checkpoint, self, split, seed, dev, state)
        desc = f"{self.name} pretrain+train" if pretraining else self.name
        self.history_ = train_epochs(run_epoch, epochs=len(phase_of), module=self.net_, progress=progress, desc=desc, checkpoint=saved)
        self.resumed_ = resumed(saved)
        self.net_.eval()
        return self

    def _pretraining(self, split: Split) -> tuple[bool, str]:
        """Whether to pre-train on ``split.full_train``, and the fit report saying what is done."""
        if not self.pretrain or self.pretrain_epochs == 0:
            return False, "off (pretrain=False)" if not self.pretrain else "off (pretrain_epochs=0)"
        if split.full_train is not None:
            protocol = split.info.get("protocol")
            fraction = protocol.get("fraction") if isinstance(protocol, dict) else None
            part = f"the 1/{fraction} fraction" if fraction else "the recent fraction"
            epochs = f"{self.pretrain_epochs} epoch{'s' if self.pretrain_epochs > 1 else ''}"
            return True, (
                f"on the full training data ({len(split.full_train):,} sessions) for {epochs} before fine-tuning on "
                f"{part} ({len(split.train):,} sessions)"
            )
        spec = DATASETS.get(split.info.get("dataset"))
        if spec is None or not spec.fraction:
            return False, f"not applicable: the training data of {split.name!r} is not a recent fraction of older data"
        source = split.info.get("source", "the input").split(" in ")[0]  # the file names, not the folder
        if self.pretrain is True:
            raise ValueError(
                f"{type(self).__name__}: pretrain=True needs the full training data of {split.name!r}, whose training "
                f"sessions are only the most recent fraction: {source} holds no older sessions (split.full_train is "
                f"None). Load the raw clicks ({spec.raw_files}) to pre-train on all of them as the paper does (Sec. 3.2), or pass "
                f"--set {self.name}.pretrain=if-available to train on the fraction alone (the result records that), "
                f"or --set {self.name}.pretrain=false."
            )
        return False, (
            f"skipped: the split has no full training set ({source} holds only the fraction); "
            f"pretrain='if-available' allowed this"
        )

    def _run_epoch(
        self, sessions: Sessions, optimizer: torch.optim.Optimizer, rng: np.random.Generator, gen: torch.Generator
    ) -> float:
        """One pass over every training prefix in random order; returns the mean loss."""
        self.net_.train()
        total, count = torch.zeros((), device=self.device), 0  # summed on the device: no sync per step
        for batch in prefix_batches(sessions, self.batch_size, rng, max_length=self.max_length, keep="last"):
            items, lengths = self._inputs(batch)
            if self.click_dropout > 0:  # paper Sec. 3.1: drop each input click with this probability
                dropped = torch.rand(items.shape, generator=gen, device=items.device) < self.click_dropout
                items = items.masked_fill(dropped, 0)
            targets = self.item_map_[torch.from_numpy(batch.targets).to(self.device)]
            # softmax over all items, fused: equals F.cross_entropy(self.net_(items, lengths), targets)
            hidden = self.net_.last_state(items, lengths)
            loss = linear_softmax_cross_entropy(hidden, self.net_.output, targets, precision=self.precision_)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
            count += len(batch)
        return float(total) / max(count, 1)

    def _inputs(self, batch: PrefixBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(items, lengths): the last ``max_length`` clicks of each prefix as compact index + 1
        (0: padding or an item without training data), and the kept lengths."""
        lengths = np.minimum(batch.lengths, self.max_length)
        start = batch.lengths - lengths
        cols = start[:, None] + np.arange(int(lengths.max()))[None, :]
        real = cols < batch.lengths[:, None]
        raw = np.where(real, np.take_along_axis(batch.items, np.minimum(cols, batch.items.shape[1] - 1), 1), PAD)
        raw = torch.from_numpy(raw).to(self.device)
        items = torch.where(raw == PAD, 0, self.item_map_[raw.clamp(min=0)] + 1)
        return items, torch.from_numpy(lengths).to(self.device)

    @torch.no_grad()
    def score(self, batch: PrefixBatch) -> torch.Tensor:
        """Scores of every item after each prefix (its last ``max_length`` clicks).

        Returns:
            float32[B, n_items]; items without training data get :data:`UNSEEN_SCORE`.
        """
        self._check_fitted("net_")
        self.net_.eval()
        items, lengths = self._inputs(batch)
        out = torch.full((len(batch), self.n_items_), UNSEEN_SCORE, device=self.device)
        out[:, self.known_] = self.net_(items, lengths)
        return out
