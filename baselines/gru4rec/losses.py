"""GRU4Rec's ranking losses over the scores of a mini-batch's targets and sampled negatives (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

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


# ------------------------------------------------------------- BPR-max for training, fused


class _ActivatedBPRMax(torch.autograd.Function):
    """BPR-max of the activated scores, with its gradient worked out by hand.

    The value is :func:`bpr_max` of ``activation(scores)``; what is new is the backward. With
    r = activation(o), s the softmax over row i's negatives, sigma_j = sigma(r_i - r_j),
    A = sum_j s_j sigma_j and Q = sum_j s_j r_j^2, the derivatives of
    -log(A + 1e-24) + bpreg Q are (writing A for A + 1e-24 in the denominators)

    - for a negative k: s_k ((A - sigma_k^2) / A + bpreg (r_k^2 + 2 r_k - Q));
    - for the target: -(A - sum_j s_j sigma_j^2) / A;

    times the activation's derivative (ELU: 1 above 0, r + alpha below; tanh: 1 - r^2). This
    takes about a dozen passes over the [B, N] scores where autograd's graph of the same
    expression takes about thirty (the step's largest cost after its products).
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor, bpreg: float, activation: str, elu_param: float) -> torch.Tensor:
        r = _activated(scores, activation, elu_param)
        target = _target_scores(r)
        # _softmax_negatives(r), written out in place: no mask, and about 5x faster on the CPU
        # than its masked_fill and softmax at [128 x 2,176] (the values agree to rounding)
        s = r.clone()
        s.diagonal().fill_(-math.inf)
        s.sub_(s.amax(1, keepdim=True)).exp_()
        s.div_(s.sum(1, keepdim=True))  # softmax over the negatives, 0 at the target
        sig = torch.sigmoid(target - r)
        ranking = (s * sig).sum(1, keepdim=True)
        reg = (s * r).mul_(r).sum(1, keepdim=True)
        ctx.save_for_backward(r, s, sig, ranking, reg)
        ctx.bpreg, ctx.activation, ctx.elu_param = bpreg, activation, elu_param
        return (reg * bpreg - ranking.add(1e-24).log())[:, 0]  # + 1e-24 as in the reference

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        r, s, sig, ranking, reg = ctx.saved_tensors
        bpreg, inv = ctx.bpreg, 1.0 / (ranking + 1e-24)
        sig2 = sig.mul_(sig)  # the saved tensors are used once (once_differentiable)
        target = (s * sig2).sum(1).sub_(ranking[:, 0]).mul_(inv[:, 0])
        # s_k ((A - sigma_k^2) / A + bpreg (r_k^2 + 2 r_k - Q)), with A and Q per row
        out = sig2.mul_(-inv).addcmul_(r, r + 2.0, value=bpreg).add_(ranking * inv - bpreg * reg).mul_(s)
        out.diagonal().copy_(target)
        if ctx.activation == "elu":  # d elu / do: r + alpha at o <= 0 (where r <= 0), 1 above
            slope = r.clamp(max=0.0).add_(ctx.elu_param)
            if ctx.elu_param != 1.0:
                slope.masked_fill_(r > 0, 1.0)
            out.mul_(slope)
        elif ctx.activation == "tanh":
            out.mul_(1.0 - r * r)
        return out.mul_(grad[:, None]), None, None, None


def _activated(scores: torch.Tensor, activation: str, elu_param: float) -> torch.Tensor:
    """The final activation of the scores (a new tensor for ELU and tanh, ``scores`` for linear)."""
    if activation == "tanh":
        return torch.tanh(scores)
    if activation == "elu":
        return F.elu(scores, elu_param)
    return scores


def training_loss(name: str, scores: torch.Tensor, bpreg: float, activation: str, elu_param: float) -> torch.Tensor:
    """float[B]: loss ``name`` of the activated scores, what a training step minimises.

    Equal to ``LOSSES[name](activation(scores), bpreg)``; BPR-max takes its hand-made gradient
    (:class:`_ActivatedBPRMax`), the others autograd's.
    """
    if name == "bpr-max":
        return _ActivatedBPRMax.apply(scores, bpreg, activation, elu_param)
    return LOSSES[name](_activated(scores, activation, elu_param), bpreg)
