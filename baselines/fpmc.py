"""FPMC for sessions: a factorised first-order Markov chain of item transitions (NARM paper,
section 4.2).

Rendle, Freudenthaler and Schmidt-Thieme, "Factorizing Personalized Markov Chains for
Next-Basket Recommendation", WWW 2010. FPMC scores item i for user u after basket B as (their
Eq. 7, with the UI and the LI parts)

    x(u, B, i) = <v_u^{U,I}, v_i^{I,U}> + (1/|B|) sum_{l in B} <v_i^{I,L}, v_l^{L,I}>

Sessions have no users, so the NARM paper drops the user latent representation, which leaves
the factorised item-to-item transition. The "basket" is the previous click, so after a prefix
whose last click is l:

    score(i | l) = <V_IL[i], V_LI[l]>

Training is S-BPR (their section 5): for every training transition l -> i (consecutive clicks
of a training session) a negative item j is drawn, and the model maximises
ln sigma(x(l, i) - x(l, j)) with L2 regularisation of the three factor rows involved. We run it
mini-batched in torch with Adam instead of Rendle's plain SGD; only the factor rows of a
batch are updated (the rule of ``torch.optim.SparseAdam``, "lazy Adam"). The parameters are
the two item factor tables, ``2 x n_items x embedding_size`` numbers, whatever the number of
sessions.

Defaults: the NARM paper gives no hyperparameters for FPMC. 100 factors (as for BPR-MF and
NARM's embeddings) and Rendle et al.'s N(0, 0.01^2) initialisation; the rest was chosen on a
validation split carved by time from DIGINETICA's training data (the most recent 10% of its
prefixes; never the test data), Recall@20 / MRR@20 in %:

    lr     l2      batch  epochs  validation
    0.001  0       512    10      31.35 / 8.34    (20 epochs: 33.17 / 8.91)
    0.003  0       512    10      32.86 / 9.24    (20 epochs: 33.42 / 9.18)
    0.003  0.0001  512    10      32.98 / 9.28    (20 epochs: 33.65 / 9.18)
    0.003  0.001   512    10      33.28 / 9.19
    0.003  0.01    512    10      32.16 / 8.35
    0.01   0       512    10      27.02 / 7.03
    0.01   0.0001  2048   10      27.73 / 7.06

Plain SGD (sum of the batch's losses, learning rate 0.02-0.05) reached only 10-18% after 5
epochs: from the small initialisation its gradients are tiny, which Adam's scaling removes.
Ten epochs keep the YOOCHOOSE 1/4-scale fit in minutes; twenty would add about half a point.

Deviations from the paper/reference:

- The basket is the single previous click (the NARM paper's "item-to-item" reading); the mean
  over all earlier clicks of the session is not used.
- Adam on mini-batches instead of SGD on single triples; the L2 term is averaged over the
  batch like the loss.
- Negatives are drawn uniformly from the items with training clicks, without rejecting the
  positive (a collision has probability 1 / n_items).
- Items without training clicks score the lowest value (``UNSEEN_SCORE``); a last click
  without training data (or outside the item range) scores 0 for every trained item.

Not deviations, but worth knowing: ``fit`` trains on the CPU whatever ``device`` says (a step
touches ~1.5k factor rows), with one torch thread, restoring the thread count afterwards.
"""

from __future__ import annotations

import logging
import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from sessionbench.data import Sessions, Split
from sessionbench.params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_params
from sessionbench.recommender import PrefixBatch, Recommender
from sessionbench.search_space import Choice, Float, Int, Space
from sessionbench.training import generators, train_epochs

__all__ = ["FPMC"]

log = logging.getLogger(__name__)

#: Score of items without training clicks: the lowest finite float32.
UNSEEN_SCORE = float(np.finfo(np.float32).min)


class FPMC(Recommender):
    """Factorised item-to-item transitions trained with sequential BPR.

    Args:
        embedding_size: Factors per item in each of V_IL and V_LI.
        learning_rate: Adam step size (chosen on validation data, see the module docstring).
        l2: L2 weight of the factor rows of each (l, i, j) triple (likewise).
        epochs: Passes over the training transitions (likewise).
        batch_size: Transitions per Adam step (likewise).
        init_std: Standard deviation of the normal initialisation (Rendle et al.: 0.01).

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "fpmc"
    paper_row: ClassVar[str | None] = "FPMC"
    quick_params: ClassVar[dict] = {"epochs": 1}
    #: Tuned by ``--tune``: around the grid of the module docstring (L2 includes 0).
    search_space: ClassVar[dict[str, Space]] = {
        "embedding_size": Int(25, 200, log=True),
        "learning_rate": Float(0.0003, 0.03, log=True),
        "l2": Choice(0.0, 0.0001, 0.001, 0.01),
        "epochs": Int(5, 30, step=5),
    }

    item_factors_: torch.Tensor | None = None  # float32[n_items, embedding_size] V_IL, the candidate side
    last_factors_: torch.Tensor | None = None  # float32[n_items, embedding_size] V_LI, the last-click side
    seen_: np.ndarray | None = None  # bool[n_items] item has training clicks
    history_: list | None = None  # EpochLog per epoch run: loss, seconds

    def __init__(
        self,
        embedding_size: int = 100,
        learning_rate: float = 0.003,
        l2: float = 0.001,
        epochs: int = 10,
        batch_size: int = 512,
        init_std: float = 0.01,
    ) -> None:
        self.embedding_size = embedding_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.init_std = init_std
        check_params(
            self, embedding_size=POSITIVE_INT, learning_rate=POSITIVE, l2=NON_NEGATIVE, epochs=POSITIVE_INT,
            batch_size=POSITIVE_INT, init_std=POSITIVE,
        )

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> FPMC:
        self.device = "cpu"  # ~1.5k factor rows per step: nothing for a GPU to gain
        rng, gen = generators(seed)
        last, nxt = _transitions(split.train)
        seen = np.bincount(split.train.items, minlength=split.n_items) > 0
        candidates = torch.from_numpy(np.flatnonzero(seen))
        item = torch.empty(split.n_items, self.embedding_size).normal_(0.0, self.init_std, generator=gen)  # V_IL
        last_f = torch.empty(split.n_items, self.embedding_size).normal_(0.0, self.init_std, generator=gen)  # V_LI
        adam = _LazyAdam([last_f, item], lr=self.learning_rate)

        def run_epoch(epoch: int) -> float:
            order = torch.from_numpy(rng.permutation(len(last)))
            total = 0.0
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo : lo + self.batch_size]
                negative = candidates[torch.randint(len(candidates), (len(idx),), generator=gen)]
                total += _step(last_f, item, adam, last[idx], nxt[idx], negative, self.l2) * len(idx)
            return total / max(len(order), 1)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a step is ~1k rows: threads only add synchronisation (10x slower on a busy machine)
        try:
            self.history_ = train_epochs(run_epoch, epochs=self.epochs, progress=progress, desc="fpmc")
        finally:
            torch.set_num_threads(threads)
        self.seen_ = seen
        self.item_factors_ = item
        self.last_factors_ = last_f
        return self

    def score(self, batch: PrefixBatch) -> torch.Tensor:
        """float32[B, n_items]: <V_IL[i], V_LI[last click]>."""
        self._check_fitted("item_factors_", "last_factors_", "seen_")
        n_items = len(self.seen_)
        last = torch.from_numpy(batch.last_items)
        known = (last >= 0) & (last < n_items)
        known &= torch.from_numpy(self.seen_)[last.clamp(0, n_items - 1)]
        query = self.last_factors_[last.clamp(0, n_items - 1)] * known[:, None]  # unknown click: zero vector
        scores = query @ self.item_factors_.T  # Eq. 7 without the user term
        scores[:, torch.from_numpy(~self.seen_)] = UNSEEN_SCORE
        return scores


def _step(
    last_factors: torch.Tensor,
    item_factors: torch.Tensor,
    adam: _LazyAdam,
    last: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    l2: float,
) -> float:
    """One S-BPR step on a batch of (last l, positive i, negative j), each int64[B]; returns the
    mean loss."""
    candidates = torch.cat([positive, negative])
    v_l = last_factors[last].requires_grad_()  # V_LI[l]: float32[B, k]
    v_ij = item_factors[candidates].requires_grad_()  # V_IL[i] and V_IL[j]: float32[2B, k]
    v_i, v_j = v_ij.chunk(2)
    x_ij = (v_l * (v_i - v_j)).sum(1)  # x(l, i) - x(l, j), Eq. 7 without the user term
    loss = -F.logsigmoid(x_ij).mean()  # S-BPR (Rendle et al., section 5)
    if l2 > 0:
        loss = loss + l2 * (v_l.square().sum() + v_ij.square().sum()) / len(last)
    grad_l, grad_ij = torch.autograd.grad(loss, (v_l, v_ij))
    adam.step([(last, grad_l), (candidates, grad_ij)])
    return float(loss.detach())


class _LazyAdam:
    """Adam on the rows a batch touched, with the update rule of ``torch.optim.SparseAdam``
    (moments of untouched rows are left as they are; bias correction by the global step).

    Written out because ``SparseAdam`` on sparse embedding gradients costs about three times
    as much per step here (coalescing sparse tensors), and FPMC's step is otherwise tiny.
    """

    def __init__(self, weights: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.weights, self.lr, self.betas, self.eps, self.steps = weights, lr, betas, eps, 0
        self.moments = [(torch.zeros_like(w), torch.zeros_like(w)) for w in weights]

    def step(self, grads: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Apply one step; ``grads[k]`` = (rows int64[N], gradient float[N, k]) of weight k,
        rows may repeat (their gradients are summed)."""
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr * math.sqrt(1 - beta2**self.steps) / (1 - beta1**self.steps)
        for weight, (mean, square), (rows, grad) in zip(self.weights, self.moments, grads):
            rows, inverse = torch.unique(rows, return_inverse=True)
            grad = torch.zeros(len(rows), weight.shape[1], dtype=grad.dtype).index_add_(0, inverse, grad)
            m = mean[rows].mul_(beta1).add_(grad, alpha=1 - beta1)
            v = square[rows].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            mean.index_copy_(0, rows, m)
            square.index_copy_(0, rows, v)
            weight.index_add_(0, rows, m / (v.sqrt() + self.eps), alpha=-step_size)


def _transitions(sessions: Sessions) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair of consecutive clicks of every session: (previous, next) int64[n_prefixes]."""
    items = torch.from_numpy(sessions.items.astype(np.int64))
    is_last = np.zeros(sessions.n_clicks, dtype=bool)
    is_last[sessions.offsets[1:] - 1] = True  # a session's last click starts no transition
    starts = torch.from_numpy(np.flatnonzero(~is_last))
    return items[starts], items[starts + 1]
