"""GRU4Rec: session-based recommendation with a GRU trained on session-parallel mini-batches.

Papers: Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with Recurrent
Neural Networks", ICLR 2016 (the NARM paper's "GRU-Rec"), and Hidasi & Karatzoglou, "Recurrent
Neural Networks with Top-k Gains for Session-based Recommendations", CIKM 2018 (extra negative
samples, the ranking-max losses, the constrained embedding). Reference code, read for every
detail below: github.com/hidasib/GRU4Rec_PyTorch_Official, ``gru4rec_pytorch.py`` at commit
4e7d23674cc3f1ea2fdee78246de11fbf6d47087 (with ``paramfiles/diginetica_bprmax_shared_best.py``),
and for TOP1, BPR and TOP1-max, which the PyTorch code dropped, the original Theano code
github.com/hidasib/GRU4Rec, ``gru4rec.py`` at commit 07f75a7a0c714ce39669757f1d895d1682117a69.
Our own code; nothing is copied.

What is computed (h: hidden state, B: sessions side by side, N_S: negatives of a row):

- Session-parallel mini-batches (ICLR 2016, Sec. 3.1.1): B sessions run side by side, one
  click per step; a slot whose session ends takes the next session, and its hidden state is
  reset to zero (:func:`session_parallel_schedule` plans a whole epoch at once). Gradients
  flow through one step only, as in the reference (the hidden state is detached every step).
- GRU step (ICLR 2016, Sec. 3; PyTorch ``GRUCell`` form): r = sigma(x_r + h_r),
  z = sigma(x_z + h_z), n = tanh(x_n + r * h_n), h' = (1 - z) n + z h, where x = W_ih e + b_ih
  (or, for one-hot input, the row of a n_items x 3H input matrix) and h_* = W_hh h + b_hh.
- Input: one-hot (``embedding_size=0``), a separate embedding, or the constrained embedding
  (the reference's ``constrained_embedding``, CIKM 2018) that uses the output weights W_y as the
  input embedding. Scores: r_j = h . W_y[j] + b_y[j], then the final activation.
- Sampling on the output (ICLR 2016, Sec. 3.1.2; CIKM 2018, "Adding additional samples"): row
  i's target is column i; the other targets of the mini-batch are its negatives, plus
  ``n_negatives`` items drawn once per step with probability ~ support^``sample_alpha`` and
  shared by all rows.
- Losses (:data:`LOSSES`, one value per row; the step minimises their sum / ``batch_size``):
  TOP1 (ICLR 2016, Sec. 3.1.3): 1/N_S sum_j sigma(r_j - r_i) + sigma(r_j^2);
  BPR (ICLR 2016, Sec. 3.1.3): -1/N_S sum_j log sigma(r_i - r_j);
  TOP1-max (CIKM 2018, "Loss function design"): sum_j s_j (sigma(r_j - r_i) + sigma(r_j^2));
  BPR-max (same section): -log sum_j s_j sigma(r_i - r_j) + bpreg sum_j s_j r_j^2, with
  s = softmax over the negatives' scores; cross-entropy (same section): -log of the softmax of
  r_i over target + negatives, optionally with the logQ correction r_j - logq * log(Q_j)
  (Q: support of in-batch items, support^alpha of sampled ones).
- Optimiser: Adagrad with momentum as the reference's ``IndexedAdagradM``:
  G += g^2, v = mu v - lr g / sqrt(G + 1e-6), w += v; the item tables (W_y, b_y, embeddings)
  are updated only in the rows the step touched (coalesced per row), as its sparse embeddings do.
- Initialisation (the reference's default "compatibility mode"): every n_in x n_out block is
  uniform on +-sqrt(6 / (n_in + n_out)); biases are zero. Dropout on the input embedding and on
  the GRU output (the dropped state is carried to the next step, as in the reference).
- Evaluation: each test prefix is fed from a zero state and every item is scored from the last
  hidden state; this equals the reference's session-parallel evaluation, which resets the state
  at every new session (checked by the tests).

Deviations from the paper/reference:

- One GRU layer only (the reference allows several; every published best setting uses one).
- Items are the training items, as in the reference (which maps only those); other item
  indices score :data:`UNSEEN_SCORE`, and a test click on such an item is skipped (the
  reference's evaluation filters those clicks out).
- Scores are ranked before the final activation. tanh and ELU are strictly increasing, so the
  order is the same, but float32 tanh saturates to exact ties that the conservative tie mode
  would count against the target.
- TOP1 and BPR average over the N_S negatives. The Theano code averages over all N_S + 1
  columns, the target's own constant term included: a factor N_S / (N_S + 1) on the gradient,
  which Adagrad's per-weight scaling cancels.
- One-hot input: dropout on the GRU output is ``dropout_hidden`` (as in the Theano code and the
  ICLR paper); the PyTorch code applies ``dropout_p_embed`` there instead. The one-hot GRU has a
  hidden-side bias b_hh like the other modes (the reference's one-hot cell has none).
- Cross-entropy uses log_softmax instead of log(softmax + 1e-24) (same value, no underflow).
- Sessions enter in the split's order (by time); the reference sorts by each session's first
  click. When sessions run out, slots retire as in the reference; their rows are simply no
  longer used (the reference compacts its hidden-state matrix, which is the same computation).
- Seeding: dropout masks and negative samples come from generators derived from ``seed``
  (SPEC 7) instead of numpy's global seed 42. A fit is bit-identical for a seed, a device and a
  thread count (other thread counts sum in another order). Rows gathered more than once in a
  step go through :func:`_take`: on the CPU, indexing's backward sums repeated rows with racing
  atomic adds as soon as torch splits it over threads (issue 20).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sessionbench.data import Split
from sessionbench.params import (
    FRACTION, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, check_params, fail, one_of,
)
from sessionbench.recommender import PAD, PrefixBatch, Recommender
from sessionbench.training import fit_checkpoint, generators, resolve_device, resumed, train_epochs

__all__ = [
    "GRU4Rec",
    "GRU4RecTuned",
    "LOSSES",
    "AdagradMomentum",
    "SessionParallelSchedule",
    "UNSEEN_SCORE",
    "item_index",
    "session_parallel_schedule",
]

#: Score of items without training clicks: below every score a trained model gives.
UNSEEN_SCORE = -1e30

FINAL_ACTIVATIONS = ("linear", "tanh", "elu")


# ----------------------------------------------------------------------------- items


def item_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training items and the map from item index to their compact index.

    Args:
        counts: int64[n_items] training clicks per item.

    Returns:
        (known, compact): int64[n_known] item indices with clicks, and int64[n_items] the
        compact index of each item (-1 for items without training clicks).
    """
    known = np.flatnonzero(counts > 0)
    compact = np.full(len(counts), -1, dtype=np.int64)
    compact[known] = np.arange(len(known))
    return known, compact


# ----------------------------------------------------------------- session-parallel batching


@dataclass(frozen=True)
class SessionParallelSchedule:
    """One epoch of session-parallel mini-batches (ICLR 2016, Sec. 3.1.1, Figure 2).

    Step ``t`` feeds, in slot ``k``, the click at ``position[t, k]`` of the flat click array
    and asks for the next click (``position + 1``). Slots are numbered so that the slots still
    busy at step ``t`` are exactly ``0 .. width[t] - 1``: a slot retires when no session is
    left for it, and the busiest come first.

    Attributes:
        position: int64[T, B] index into ``Sessions.items`` of each input click; -1 where the
            slot has retired.
        reset: bool[T, B] True where the slot starts a new session at this step, i.e. where its
            hidden state must be zero before the step.
        width: int64[T] number of busy slots at each step (non-increasing).
    """

    position: np.ndarray
    reset: np.ndarray
    width: np.ndarray

    def __len__(self) -> int:
        return len(self.width)


def session_parallel_schedule(lengths: np.ndarray, batch_size: int) -> SessionParallelSchedule:
    """Plan session-parallel mini-batches over sessions of the given lengths, in their order.

    The first ``batch_size`` sessions start in slots 0.. at step 0; whenever slots free up, the
    next sessions go to them in slot order, exactly as the reference's loop hands them out.
    A session of L clicks occupies its slot for L - 1 steps (one per prediction).

    Args:
        lengths: int64[n] clicks per session (each >= 2), in training order.
        batch_size: Number of slots B.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 2).any():
        raise ValueError("session_parallel_schedule: every session needs at least 2 clicks")
    n, slots = len(lengths), min(batch_size, len(lengths))
    start = np.empty(n, dtype=np.int64)
    slot = np.empty(n, dtype=np.int64)
    # (step at which the slot is free, slot): popping gives the earliest, ties by slot number
    free = [(0, k) for k in range(slots)]
    for s, steps in enumerate((lengths - 1).tolist()):
        t, k = heapq.heappop(free)
        start[s], slot[s] = t, k
        heapq.heappush(free, (t + steps, k))
    finish = np.zeros(slots, dtype=np.int64)
    np.maximum.at(finish, slot, start + lengths - 1)
    # renumber slots, busiest first, so that the busy slots of every step are a prefix
    order = np.argsort(-finish, kind="stable")
    rank = np.empty(slots, dtype=np.int64)
    rank[order] = np.arange(slots)
    slot = rank[slot]
    n_steps = int(finish.max()) if n else 0
    position = np.full((n_steps, slots), -1, dtype=np.int64)
    reset = np.zeros((n_steps, slots), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    steps_per = lengths - 1
    first = np.repeat(np.cumsum(steps_per) - steps_per, steps_per)
    within = np.arange(int(steps_per.sum()), dtype=np.int64) - first
    position[np.repeat(start, steps_per) + within, np.repeat(slot, steps_per)] = (
        np.repeat(offsets[:-1], steps_per) + within
    )
    reset[start, slot] = True
    width = (finish[order][None, :] > np.arange(n_steps)[:, None]).sum(1)
    return SessionParallelSchedule(position, reset, width)


# --------------------------------------------------------------------------------- losses


def _target_scores(scores: torch.Tensor) -> torch.Tensor:
    """float[B, 1]: row i's target score, column i."""
    return scores[:, : scores.shape[0]].diagonal()[:, None]


def _negative_mask(scores: torch.Tensor) -> torch.Tensor:
    """bool[B, N]: True at the negatives of each row (every column but its own target)."""
    b, n = scores.shape
    return ~torch.eye(b, n, dtype=torch.bool, device=scores.device)


def _softmax_negatives(scores: torch.Tensor) -> torch.Tensor:
    """s: softmax over each row's negatives, 0 at the target (CIKM 2018, "Loss function design")."""
    return scores.masked_fill(~_negative_mask(scores), -math.inf).softmax(1)


def top1(scores: torch.Tensor, bpreg: float = 0.0) -> torch.Tensor:
    """TOP1 (ICLR 2016, Sec. 3.1.3): 1/N_S sum_j sigma(r_j - r_i) + sigma(r_j^2). float[B]."""
    terms = torch.sigmoid(scores - _target_scores(scores)) + torch.sigmoid(scores**2)
    return (terms * _negative_mask(scores)).sum(1) / (scores.shape[1] - 1)


def bpr(scores: torch.Tensor, bpreg: float = 0.0) -> torch.Tensor:
    """BPR (ICLR 2016, Sec. 3.1.3): -1/N_S sum_j log sigma(r_i - r_j). float[B]."""
    terms = F.logsigmoid(_target_scores(scores) - scores)
    return -(terms * _negative_mask(scores)).sum(1) / (scores.shape[1] - 1)


def top1_max(scores: torch.Tensor, bpreg: float = 0.0) -> torch.Tensor:
    """TOP1-max (CIKM 2018, "Loss function design"): sum_j s_j (sigma(r_j - r_i) + sigma(r_j^2)). float[B]."""
    terms = torch.sigmoid(scores - _target_scores(scores)) + torch.sigmoid(scores**2)
    return (_softmax_negatives(scores) * terms).sum(1)


def bpr_max(scores: torch.Tensor, bpreg: float = 1.0) -> torch.Tensor:
    """BPR-max with score regularisation (CIKM 2018, "Loss function design"):
    -log sum_j s_j sigma(r_i - r_j) + bpreg sum_j s_j r_j^2. float[B]."""
    s = _softmax_negatives(scores)
    ranking = (s * torch.sigmoid(_target_scores(scores) - scores)).sum(1)
    # + 1e-24 as in the reference: keeps the log finite when every sigmoid underflows
    return -torch.log(ranking + 1e-24) + bpreg * (s * scores**2).sum(1)


def cross_entropy(scores: torch.Tensor, bpreg: float = 0.0) -> torch.Tensor:
    """Cross-entropy over target + negatives (CIKM 2018, "Loss function design"): -log softmax(r)_i. float[B]."""
    return -scores.log_softmax(1)[:, : scores.shape[0]].diagonal()


#: name -> loss(scores float[B, N] with row i's target in column i, bpreg) -> float[B].
LOSSES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "top1": top1,
    "bpr": bpr,
    "top1-max": top1_max,
    "bpr-max": bpr_max,
    "cross-entropy": cross_entropy,
}


# ------------------------------------------------------------------------------ optimiser


class AdagradMomentum:
    """Adagrad with momentum, updating item tables only in the rows a step touched.

    The reference's ``IndexedAdagradM``: G += g^2; v = mu v - lr g / sqrt(G + eps); w += v.
    Rows not touched by a step keep their accumulator, velocity and weights unchanged.
    """

    def __init__(self, params: list[nn.Parameter], learning_rate: float, momentum: float, eps: float = 1e-6):
        self.learning_rate, self.momentum, self.eps = learning_rate, momentum, eps
        self.acc = {p: torch.zeros_like(p) for p in params}
        self.velocity = {p: torch.zeros_like(p) for p in params} if momentum > 0 else {}

    def state_dict(self) -> dict[str, list[torch.Tensor]]:
        """The accumulators and velocities, in the order of the parameters."""
        return {"acc": list(self.acc.values()), "velocity": list(self.velocity.values())}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, list[torch.Tensor]]) -> None:
        for name in ("acc", "velocity"):
            mine = list(getattr(self, name).values())
            if len(state[name]) != len(mine):
                raise ValueError(f"AdagradMomentum: {len(state[name])} {name} tensors for {len(mine)} parameters")
            for tensor, saved in zip(mine, state[name]):
                tensor.copy_(saved)

    @torch.no_grad()
    def step_dense(self, param: nn.Parameter, grad: torch.Tensor) -> None:
        acc = self.acc[param].addcmul_(grad, grad)
        denom = (acc + self.eps).sqrt_()
        if self.momentum > 0:
            v = self.velocity[param].mul_(self.momentum).addcdiv_(grad, denom, value=-self.learning_rate)
            param.add_(v)
        else:
            param.addcdiv_(grad, denom, value=-self.learning_rate)

    @torch.no_grad()
    def step_rows(self, param: nn.Parameter, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update ``param[rows]`` (``rows`` unique) with the coalesced gradient ``grad``."""
        acc = self.acc[param].index_select(0, rows).addcmul_(grad, grad)
        self.acc[param].index_copy_(0, rows, acc)
        update = grad / acc.add_(self.eps).sqrt_()
        if self.momentum > 0:
            v = self.velocity[param].index_select(0, rows).mul_(self.momentum).add_(update, alpha=-self.learning_rate)
            self.velocity[param].index_copy_(0, rows, v)
            param.index_add_(0, rows, v)
        else:
            param.index_add_(0, rows, update, alpha=-self.learning_rate)


# ---------------------------------------------------------------------------------- network


def _glorot_(tensor: torch.Tensor, fan_in: int, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform on +-sqrt(6 / (fan_in + fan_out)), the reference's initialisation of a block."""
    sigma = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-sigma, sigma, generator=generator)


class GRU4RecNet(nn.Module):
    """The network: item input (one-hot, embedding or constrained), one GRU layer, item scores.

    Args:
        n_items: Number of (training) items.
        hidden_size: GRU units H.
        embedding_size: 0 for one-hot input, else the size of a separate input embedding.
        constrained_embedding: Use the output weights as input embedding (then H-sized).
        generator: Source of the initial weights.
    """

    def __init__(
        self,
        n_items: int,
        hidden_size: int,
        embedding_size: int,
        constrained_embedding: bool,
        generator: torch.Generator,
    ):
        super().__init__()
        h = hidden_size
        self.constrained = constrained_embedding
        self.item_weight = nn.Parameter(_glorot_(torch.empty(n_items, h), n_items, h, generator))  # W_y
        self.item_bias = nn.Parameter(torch.zeros(n_items))  # b_y
        if constrained_embedding or embedding_size:
            n_in = h if constrained_embedding else embedding_size
            if not constrained_embedding:
                self.embedding = nn.Parameter(_glorot_(torch.empty(n_items, n_in), n_items, n_in, generator))
            self.weight_ih = nn.Parameter(_glorot_(torch.empty(3 * h, n_in), n_in, h, generator))
        else:  # one-hot input: row x of a n_items x 3H matrix is W_ih times the one-hot vector
            self.input_weight = nn.Parameter(_glorot_(torch.empty(n_items, 3 * h), n_items, h, generator))
        self.bias_ih = nn.Parameter(torch.zeros(3 * h))
        self.weight_hh = nn.Parameter(_glorot_(torch.empty(3 * h, h), h, h, generator))
        self.bias_hh = nn.Parameter(torch.zeros(3 * h))

    @property
    def one_hot(self) -> bool:
        return not hasattr(self, "weight_ih")

    def input_table(self) -> nn.Parameter:
        """The item table the input rows come from."""
        if self.constrained:
            return self.item_weight
        return self.input_weight if self.one_hot else self.embedding

    def project_input(self, rows: torch.Tensor) -> torch.Tensor:
        """x = W_ih e + b_ih for input rows e (float[B, E]; for one-hot: rows of the input matrix)."""
        return rows + self.bias_ih if self.one_hot else F.linear(rows, self.weight_ih, self.bias_ih)

    def cell(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step from projected input x (float[B, 3H]) and state h (float[B, H])."""
        xr, xz, xn = x.chunk(3, 1)
        hr, hz, hn = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, 1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return n + z * (h - n)  # (1 - z) n + z h

    def step(self, items: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Evaluation step: next state after clicks on ``items`` (int64[B], compact indices)."""
        return self.cell(self.project_input(self.input_table()[items]), h)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """float[B, n_items]: h . W_y[j] + b_y[j] for every item, before the final activation."""
        return torch.addmm(self.item_bias, h, self.item_weight.T)


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout with an explicit generator (F.dropout would use the global one)."""
    if p <= 0:
        return x
    # rand + compare: ~3x faster than bernoulli_ on the CPU
    keep = torch.rand(x.shape, generator=generator, device=x.device).lt_(1.0 - p)
    return x * keep.mul_(1.0 / (1.0 - p))


class _NegativeSampler:
    """Extra negatives drawn with probability ~ support^alpha, ``n`` per step, shared by the
    mini-batch (CIKM 2018, "Adding additional samples"); drawn a chunk of steps at a time like the reference's
    sample cache."""

    def __init__(self, counts: np.ndarray, alpha: float, n: int, rng: np.random.Generator, device: torch.device):
        weights = counts.astype(np.float64) ** alpha
        self.cdf = np.cumsum(weights) / weights.sum()
        self.cdf[-1] = 1.0
        self.n, self.rng, self.device = n, rng, device
        self.chunk = max(1, 2_000_000 // n)
        self.buffer: torch.Tensor | None = None
        self.next = 0

    def state_dict(self) -> dict[str, Any]:
        """The drawn chunk and the position in it (the generator is saved on its own)."""
        return {"buffer": self.buffer, "next": self.next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer = None if state["buffer"] is None else state["buffer"].to(self.device)
        self.next = state["next"]

    def __call__(self) -> torch.Tensor:
        if self.buffer is None or self.next == len(self.buffer):
            draws = np.searchsorted(self.cdf, self.rng.random(self.chunk * self.n), side="right")
            self.buffer = torch.from_numpy(draws.reshape(self.chunk, self.n)).to(self.device)
            self.next = 0
        self.next += 1
        return self.buffer[self.next - 1]


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
        self._validate()

    def _validate(self) -> None:
        check_params(
            self, loss=one_of(*LOSSES), final_activation=one_of(*FINAL_ACTIVATIONS), hidden_size=POSITIVE_INT,
            embedding_size=NON_NEGATIVE_INT, constrained_embedding=one_of(True, False),
            batch_size=POSITIVE_INT, dropout_embedding=FRACTION, dropout_hidden=FRACTION, learning_rate=POSITIVE,
            momentum=FRACTION, n_negatives=NON_NEGATIVE_INT, sample_alpha=NON_NEGATIVE, bpreg=NON_NEGATIVE,
            elu_param=POSITIVE, logq=NON_NEGATIVE, epochs=POSITIVE_INT,
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
        rng, gen = generators(seed, dev)
        counts = np.bincount(split.train.items, minlength=split.n_items)
        known, compact = item_index(counts)
        net = GRU4RecNet(len(known), self.hidden_size, self.embedding_size, self.constrained_embedding, gen)
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
        new_hidden = _dropout(net.cell(net.project_input(inp), hidden), self.dropout_hidden, gen)
        scores = _take(torch.addmm(bias, new_hidden, out_table.T), 1, columns)  # float[w, w + n_negatives]
        if self.logq:
            log_q = self._log_support[outputs]
            if negatives is not None:
                log_q = torch.cat([log_q[:w], self.sample_alpha * log_q[w:]])
            scores = scores - self.logq * log_q
        loss = LOSSES[self.loss](self._activate(scores), self.bpreg).sum() / self.batch_size
        dense = [net.weight_hh, net.bias_hh, net.bias_ih] + ([] if net.one_hot else [net.weight_ih])
        grads = list(torch.autograd.grad(loss, dense + [leaf for _, _, leaf in leaves] + [bias]))
        for param, grad in zip(dense, grads):
            opt.step_dense(param, grad)
        for (param, rows, _), grad in zip(leaves, grads[len(dense) : -1]):
            opt.step_rows(param, rows, grad)
        # the bias of a row that is only an input has no gradient: leave it (and its momentum)
        is_output = torch.zeros(len(out_rows), dtype=torch.bool, device=out_rows.device).index_fill_(0, columns, True)
        opt.step_rows(net.item_bias, out_rows[is_output], grads[-1][is_output])
        return new_hidden.detach(), loss.detach()

    def _activate(self, scores: torch.Tensor) -> torch.Tensor:
        if self.final_activation == "tanh":
            return torch.tanh(scores)
        if self.final_activation == "elu":
            return F.elu(scores, self.elu_param)
        return scores

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
    """``table[rows]`` as a new leaf tensor whose gradient is the rows' coalesced gradient."""
    return table.detach()[rows].requires_grad_()


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


class GRU4RecTuned(GRU4Rec):
    """GRU4Rec with its authors' published DIGINETICA setting ("GRU4Rec (tuned)").

    Defaults: ``paramfiles/diginetica_bprmax_shared_best.py`` of the reference: BPR-max loss
    with ELU(1) final activation and bpreg 0.9, constrained embedding, 512 units, mini-batch 128,
    dropout 0.5 on the embedding and 0.3 on the hidden state, learning rate 0.05, momentum 0.15,
    2048 extra negatives drawn by support^0.3, 10 epochs. Arguments as for :class:`GRU4Rec`.
    """

    name: ClassVar[str] = "gru4rec-tuned"
    paper_row: ClassVar[str | None] = "GRU4Rec (tuned)"

    def __init__(
        self,
        loss: str = "bpr-max",
        final_activation: str = "elu",
        hidden_size: int = 512,
        embedding_size: int = 0,
        constrained_embedding: bool = True,
        batch_size: int = 128,
        dropout_embedding: float = 0.5,
        dropout_hidden: float = 0.3,
        learning_rate: float = 0.05,
        momentum: float = 0.15,
        n_negatives: int = 2048,
        sample_alpha: float = 0.3,
        bpreg: float = 0.9,
        elu_param: float = 1.0,
        logq: float = 0.0,
        epochs: int = 10,
    ) -> None:
        super().__init__(
            loss=loss, final_activation=final_activation, hidden_size=hidden_size, embedding_size=embedding_size,
            constrained_embedding=constrained_embedding, batch_size=batch_size, dropout_embedding=dropout_embedding,
            dropout_hidden=dropout_hidden, learning_rate=learning_rate, momentum=momentum, n_negatives=n_negatives,
            sample_alpha=sample_alpha, bpreg=bpreg, elu_param=elu_param, logq=logq, epochs=epochs,
        )
