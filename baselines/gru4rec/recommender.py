"""GRU4Rec and tuned GRU4Rec as recommenders: training and scoring (see the package docstring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from baselines.gru4rec.batching import FINAL_ACTIVATIONS, UNSEEN_SCORE, item_index, session_parallel_schedule
from baselines.gru4rec.losses import LOSSES, training_loss
from baselines.gru4rec.network import GRU4RecNet, _dropout, _NegativeSampler, linear
from baselines.gru4rec.optimizer import AdagradMomentum
from sessionbench.data import Split
from sessionbench.params import (
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    check_params,
    fail,
    one_of,
)
from sessionbench.precision import PRECISIONS, resolve_precision
from sessionbench.recommender import PAD, PrefixBatch, Recommender
from sessionbench.training import fit_checkpoint, generators, resolve_device, resumed, train_epochs, weights_generator

# ------------------------------------------------------------------------------ recommender


class GRU4Rec(Recommender):
    """GRU4Rec with the ICLR 2016 settings the NARM paper compared against ("GRU-Rec").

    Defaults: ICLR 2016, Table 2 (best TOP1 parametrisation: mini-batch 50, dropout 0.5,
    learning rate 0.01, momentum 0, Adagrad) and Sec. 4 (100 GRU units, one-hot input); tanh
    final activation and 10 epochs as in the reference's reproduction of that paper
    (``examples/rsc15/run_rsc15.py``); no extra negatives (2016: in-batch sampling only).

    Args:
        loss: "top1", "bpr", "top1-max", "bpr-max" or "cross-entropy".
        final_activation: Applied to the scores before the loss: "linear", "tanh" or "elu".
        hidden_size: GRU units.
        embedding_size: 0: one-hot input; > 0: separate input embedding of this size.
        constrained_embedding: Share the output item weights as input embedding.
        batch_size: Sessions side by side (also the in-batch negatives + 1).
        dropout_embedding: Dropout on the input embedding (not used with one-hot input).
        dropout_hidden: Dropout on the GRU output.
        learning_rate: Adagrad step size.
        momentum: Momentum of the Adagrad updates (0: none).
        n_negatives: Extra negatives per step, shared by the mini-batch.
        sample_alpha: Extra negatives are drawn with probability ~ support^sample_alpha.
        bpreg: Score regularisation of BPR-max.
        elu_param: alpha of the ELU final activation.
        logq: logQ correction strength (cross-entropy only).
        epochs: Passes over the training sessions.
        precision: Of the training step's products (the GRU's and the scores'): "fp32" (the
            default, as the reference), "bf16" (bf16 inputs accumulated in fp32, everything else in
            fp32) or "auto" (bf16 where the CPU or GPU does it natively;
            :mod:`sessionbench.precision`). Scoring is fp32 always.
    """

    name: ClassVar[str] = "gru4rec"
    paper_row: ClassVar[str | None] = "GRU-Rec"
    quick_params: ClassVar[dict[str, Any]] = {"epochs": 1}

    net_: GRU4RecNet | None = None  # the trained network over the training items
    item_map_: torch.Tensor | None = None  # int64[n_items]: compact index of each item, -1 if unseen
    known_: torch.Tensor | None = None  # int64[n_known]: item index of each compact index
    n_items_: int | None = None  # width of the score matrix
    history_: list | None = None  # EpochLog per epoch run: loss, seconds
    resumed_: dict | None = None  # {"epochs", "seconds"} taken from a checkpoint by the last fit
    precision_: str | None = None  # "fp32" or "bf16": what ``precision`` meant in the last fit

    def __init__(
        self,
        loss: str = "top1",
        final_activation: str = "tanh",
        hidden_size: int = 100,
        embedding_size: int = 0,
        constrained_embedding: bool = False,
        batch_size: int = 50,
        dropout_embedding: float = 0.0,
        dropout_hidden: float = 0.5,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        n_negatives: int = 0,
        sample_alpha: float = 0.75,
        bpreg: float = 1.0,
        elu_param: float = 1.0,
        logq: float = 0.0,
        epochs: int = 10,
        precision: str = "fp32",
    ) -> None:
        self.loss = loss
        self.final_activation = final_activation
        self.hidden_size = hidden_size
        self.embedding_size = embedding_size
        self.constrained_embedding = constrained_embedding
        self.batch_size = batch_size
        self.dropout_embedding = dropout_embedding
        self.dropout_hidden = dropout_hidden
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.n_negatives = n_negatives
        self.sample_alpha = sample_alpha
        self.bpreg = bpreg
        self.elu_param = elu_param
        self.logq = logq
        self.epochs = epochs
        self.precision = precision
        self._validate()

    def _validate(self) -> None:
        check_params(
            self, loss=one_of(*LOSSES), final_activation=one_of(*FINAL_ACTIVATIONS), hidden_size=POSITIVE_INT,
            embedding_size=NON_NEGATIVE_INT, constrained_embedding=one_of(True, False),
            batch_size=POSITIVE_INT, dropout_embedding=FRACTION, dropout_hidden=FRACTION, learning_rate=POSITIVE,
            momentum=FRACTION, n_negatives=NON_NEGATIVE_INT, sample_alpha=NON_NEGATIVE, bpreg=NON_NEGATIVE,
            elu_param=POSITIVE, logq=NON_NEGATIVE, epochs=POSITIVE_INT, precision=one_of(*PRECISIONS),
        )
        if self.constrained_embedding and self.embedding_size:
            fail(self, "embedding_size", "0 if constrained_embedding")
        if self.batch_size < 2 and not self.n_negatives:  # a lone row has no negative to rank against
            fail(self, "batch_size", ">= 2 (>= 1 with n_negatives > 0)")
        if self.logq and self.loss != "cross-entropy":
            fail(self, "logq", "0 unless loss='cross-entropy'")

    # -------------------------------------------------------------------------------- fit

    def fit(
        self,
        split: Split,
        *,
        seed: int,
        device: str = "cpu",
        progress: bool = True,
        checkpoint: str | Path | None = None,
    ) -> GRU4Rec:
        """Train for ``epochs`` epochs of session-parallel mini-batches over ``split.train``.

        Args:
            checkpoint: A file to save the training in after every epoch; a later fit of the
                same training resumes from it (see :class:`sessionbench.training.Checkpoint`).
        """
        dev = resolve_device(device)
        self.device = str(dev)
        self.precision_ = resolve_precision(self.precision, dev)
        rng, gen = generators(seed, dev)
        counts = np.bincount(split.train.items, minlength=split.n_items)
        known, compact = item_index(counts)
        init = weights_generator(gen)  # the weights are drawn on the CPU, whatever the device
        net = GRU4RecNet(len(known), self.hidden_size, self.embedding_size, self.constrained_embedding, init)
        self.net_ = net.to(dev)
        self.item_map_, self.known_ = torch.from_numpy(compact).to(dev), torch.from_numpy(known).to(dev)
        self.n_items_ = split.n_items
        self._gen = gen
        self._optimizer = AdagradMomentum(list(net.parameters()), self.learning_rate, self.momentum)
        self._sampler = (
            _NegativeSampler(counts[known], self.sample_alpha, self.n_negatives, rng, dev) if self.n_negatives else None
        )
        # logQ: the popularity each column was sampled with (support; support^alpha if drawn)
        self._log_support = torch.log(torch.from_numpy(counts[known]).to(dev, torch.float32)) if self.logq else None
        clicks = compact[split.train.items]
        schedule = session_parallel_schedule(split.train.lengths, self.batch_size)
        steps = len(schedule) if self.n_negatives else int((schedule.width >= 2).sum())  # a lone row has no negative
        pos = schedule.position[:steps]
        self._inputs = torch.from_numpy(np.where(pos >= 0, clicks[pos], 0)).to(dev)
        self._targets = torch.from_numpy(np.where(pos >= 0, clicks[np.maximum(pos, 0) + 1], 0)).to(dev)
        self._reset = torch.from_numpy(schedule.reset[:steps]).to(dev)
        self._width = schedule.width[:steps].tolist()
        state = {"optimizer": self._optimizer, "rng": rng, "dropout": gen}
        if self._sampler is not None:
            state["sampler"] = self._sampler
        saved = fit_checkpoint(checkpoint, self, split, seed, dev, state)
        try:
            self.history_ = train_epochs(
                self._run_epoch, epochs=self.epochs, module=net, progress=progress, desc=self.name, checkpoint=saved
            )
            self.resumed_ = resumed(saved)
        finally:
            del self._inputs, self._targets, self._reset, self._width, self._optimizer, self._sampler, self._gen
        return self

    def _run_epoch(self, epoch: int) -> float:
        """One pass of session-parallel mini-batches; returns the mean loss per prediction."""
        dev = self._inputs.device
        hidden = torch.zeros(self.batch_size, self.hidden_size, device=dev)
        total, count = torch.zeros((), device=dev), 0
        for t, width in enumerate(self._width):
            hidden = _reset_hidden(hidden[:width], self._reset[t, :width])
            negatives = self._sampler() if self._sampler is not None else None
            hidden, loss = self._train_step(hidden, self._inputs[t, :width], self._targets[t, :width], negatives)
            total += loss
            count += width
        return float(total) * self.batch_size / max(count, 1)

    def _train_step(
        self, hidden: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss, backward and update for one session-parallel step.

        Args:
            hidden: float[w, H] states entering the step (already reset for new sessions).
            inputs: int64[w] compact index of each slot's current click.
            targets: int64[w] compact index of each slot's next click.
            negatives: int64[n_negatives] shared extra negatives, or None.

        Returns:
            The new states (float[w, H], detached: one-step BPTT as in the reference) and the
            step's loss (sum over rows / batch_size, detached).
        """
        net, opt, gen = self.net_, self._optimizer, self._gen
        w = len(inputs)
        outputs = targets if negatives is None else torch.cat([targets, negatives])
        # Item tables are touched only in the rows of this step (the reference's sparse
        # embeddings): gather each table's unique rows as leaf tensors, update those rows.
        # Scores are computed against the unique output rows and then spread to the columns,
        # which avoids copying (and scattering back) a row per column.
        if net.constrained:  # one table for inputs and outputs: its gradient rows coalesce both
            rows, inverse = torch.unique(torch.cat([inputs, outputs]), return_inverse=True)
            table = out_table = _gather_leaf(net.item_weight, rows)
            inp, out_rows, columns = _take(table, 0, inverse[:w]), rows, inverse[w:]
            leaves = [(net.item_weight, rows, table)]
        else:
            in_rows, in_inverse = torch.unique(inputs, return_inverse=True)
            out_rows, columns = torch.unique(outputs, return_inverse=True)
            in_table = _gather_leaf(net.input_table(), in_rows)
            out_table = _gather_leaf(net.item_weight, out_rows)
            inp = _take(in_table, 0, in_inverse)
            leaves = [(net.input_table(), in_rows, in_table), (net.item_weight, out_rows, out_table)]
        bias = _gather_leaf(net.item_bias, out_rows)
        if not net.one_hot:
            inp = _dropout(inp, self.dropout_embedding, gen)
        bf16 = self.precision_ == "bf16"
        new_hidden = _dropout(net.cell(net.project_input(inp, bf16), hidden, bf16), self.dropout_hidden, gen)
        scores = _take(linear(new_hidden, out_table, bias, bf16), 1, columns)  # float[w, w + n_negatives]
        if self.logq:
            log_q = self._log_support[outputs]
            if negatives is not None:
                log_q = torch.cat([log_q[:w], self.sample_alpha * log_q[w:]])
            scores = scores - self.logq * log_q
        rows_loss = training_loss(self.loss, scores, self.bpreg, self.final_activation, self.elu_param)
        loss = rows_loss.sum() / self.batch_size
        dense = [net.weight_hh, net.bias_hh, net.bias_ih] + ([] if net.one_hot else [net.weight_ih])
        grads = list(torch.autograd.grad(loss, dense + [leaf for _, _, leaf in leaves] + [bias]))
        opt.step_dense(dense, grads[: len(dense)])
        for (param, rows, _), grad in zip(leaves, grads[len(dense) : -1]):
            opt.step_rows(param, rows, grad)
        # the bias of a row that is only an input has no gradient: leave it (and its momentum)
        is_output = torch.zeros(len(out_rows), dtype=torch.bool, device=out_rows.device).index_fill_(0, columns, True)
        opt.step_rows(net.item_bias, out_rows[is_output], grads[-1][is_output])
        return new_hidden.detach(), loss.detach()

    # ------------------------------------------------------------------------------ score

    @torch.no_grad()
    def score(self, batch: PrefixBatch) -> torch.Tensor:
        """Feed each prefix from a zero state; score every item from the last state.

        Returns:
            float32[B, n_items]; items without training clicks get :data:`UNSEEN_SCORE`.
        """
        self._check_fitted("net_")
        net = self.net_
        items = torch.from_numpy(batch.items).to(self.device)
        compact = self.item_map_[items.clamp(min=0)]
        # padding and clicks on items the model never saw leave the state unchanged
        fed = (items != PAD) & (compact >= 0)
        hidden = torch.zeros(len(batch), self.hidden_size, device=self.device)
        for t in range(items.shape[1]):
            if bool(fed[:, t].any()):
                stepped = net.step(compact[:, t].clamp(min=0), hidden)
                hidden = torch.where(fed[:, t, None], stepped, hidden)
        out = torch.full((len(batch), self.n_items_), UNSEEN_SCORE, device=self.device)
        out[:, self.known_] = net.scores(hidden)
        return out


def _gather_leaf(table: nn.Parameter, rows: torch.Tensor) -> torch.Tensor:
    """``table[rows]`` as a new leaf tensor whose gradient is the rows' coalesced gradient
    (``index_select``: the same copy as indexing, faster on the CPU)."""
    return table.detach().index_select(0, rows).requires_grad_()


def _take(x: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """``x`` at ``index`` along ``dim`` (0 or 1; ``index`` may repeat), with a deterministic backward.

    On the CPU, indexing's backward (``index_put_(accumulate=True)``) sums repeated indices with
    atomic adds from several threads once the gradient is 32k elements or more, so their order
    varies from run to run; ``index_select``'s backward (``index_add_``) sums them in index
    order. On CUDA it is the other way round: indexing's backward sorts the indices first, while
    ``index_add_`` uses atomic adds.
    """
    if x.device.type == "cpu":
        return x.index_select(dim, index)
    return x[index] if dim == 0 else x[:, index]


def _reset_hidden(hidden: torch.Tensor, reset: torch.Tensor) -> torch.Tensor:
    """Zero the states (float[w, H]) of the slots that start a new session (bool[w])."""
    return hidden.masked_fill(reset[:, None], 0.0)
