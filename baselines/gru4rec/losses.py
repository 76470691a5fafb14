"""GRU4Rec's ranking losses over the scores of a mini-batch's targets and sampled negatives (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

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


