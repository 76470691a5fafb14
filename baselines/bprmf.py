"""BPR-MF: matrix factorisation with the BPR pairwise ranking objective (NARM paper, section 4.2).

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009, optimised
with LearnBPR (their Algorithm 1: SGD over sampled (user, positive, negative) triples) on

    x_ui = <w_u, h_i> + b_i,    maximise  sum ln sigma(x_ui - x_uj) - l2 * ||Theta||^2

The NARM paper (after Hidasi et al., ICLR 2016) applies it to sessions: each *training
session* is a user, and "a new session has no feature vector", so a prefix is represented by
the average of the latent factors of its items. The score of candidate i after prefix p_1..p_n
is therefore

    score(i) = (1/n) sum_t (<h_{p_t}, h_i> + b_i) = <mean_t h_{p_t}, h_i> + b_i

(the mean over clicks, repeated clicks included, as in the GRU4Rec authors' ``BPR`` baseline in
``baselines.py`` of github.com/hidasib/GRU4Rec, commit 5da3672f, ``predict_next``).

The factorisation is the ``implicit`` library's CPU BPR (``implicit.cpu.bpr``, checked against
implicit 0.7.x). implicit >= 0.5 takes a *user x item* CSR matrix: the rows are the users, here
the training sessions (one row per session, a 1 wherever the session clicked the item). It
stores the item bias as an extra, last column of ``item_factors`` (and a constant 1 as the
last column of ``user_factors``), so ``item_factors`` has ``embedding_size + 1`` columns; the
session factors (``user_factors``) are not used for prediction.

Defaults: 100 factors, no L2, learning rate 0.1 and 50 epochs. The GRU4Rec authors' baseline
setting (100 factors, 10 epochs, learning rate 0.01, no L2; the NARM paper gives none of its
own) leaves implicit's factors near their small initialisation: 0.10% Recall@20 on a validation
split carved by time from DIGINETICA's training data (the most recent 10% of its prefixes;
never the test data). On that split, and on the same kind of split of YOOCHOOSE 1/64, we tried
learning rates 0.01-1.0, 10-100 epochs and L2 0-0.01 (Recall@20 / MRR@20 in %):

    lr     epochs  l2      DIGINETICA      YOOCHOOSE 1/64
    0.01   10      0        0.10 /  0.03
    0.05   50      0       31.70 /  9.47   51.20 / 19.29
    0.1    50      0       35.74 / 11.03   55.12 / 21.19
    0.2    50      0       38.58 / 12.36   53.82 / 21.74
    0.2    100     0       39.77 / 13.21
    0.5    50      0       20.49 / 10.11
    1.0    50      0.001   diverged (NaN)

0.1 is the best on YOOCHOOSE 1/64 and far enough from divergence to be safe on larger data;
0.2 would gain about 3 points on DIGINETICA. L2 of 0.001-0.01 lowered both metrics. One
implicit epoch draws as many triples as the matrix has non-zeros.

Determinism: implicit's SGD is Hogwild (threads update shared factors without locks), so two
runs with more than one thread differ; ``fit`` therefore runs it with ``n_threads=1`` by
default, which is reproducible for a fixed seed (tested).

Deviations from the paper/reference:

- implicit samples the positive as a random non-zero of the matrix and the negative as the item
  of another random non-zero, i.e. negatives in proportion to the number of sessions an item
  occurs in, and skips a triple whose negative the session clicked. The reference samples one
  triple per training *click* (repeated clicks count) with a uniform negative, and never
  checks it.
- implicit learns the item bias; the reference declares ``bI`` but never updates it.
- Initialisation is implicit's: uniform in +-0.5 / factors (the reference: +-0.05).
- Items without training clicks score the lowest value (``UNSEEN_SCORE``) and are left out of
  a prefix's mean; a prefix of only such items is represented by the zero vector (scores =
  item biases).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from sessionbench.data import Split
from sessionbench.params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_params
from sessionbench.recommender import PrefixBatch, Recommender
from sessionbench.search_space import Choice, Float, Int, Space

__all__ = ["BPRMF"]

#: Score of items without training clicks: the lowest finite float32.
UNSEEN_SCORE = float(np.finfo(np.float32).min)


class BPRMF(Recommender):
    """BPR matrix factorisation on sessions; a prefix is the mean of its items' factors.

    Args:
        embedding_size: Latent factors per item (GRU4Rec authors' baseline: 100).
        learning_rate: SGD step size (their baseline: 0.01; 0.1 chosen on validation data,
            see the module docstring).
        l2: L2 regularisation of every factor and bias updated (their baseline: 0, no L2).
        epochs: Passes of implicit's sampler over the non-zeros (their baseline: 10; 50
            chosen on validation data).
        n_threads: Threads of implicit's SGD; 1 (default) is reproducible, more is faster but
            Hogwild and so not bit-for-bit reproducible.

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "bprmf"
    paper_row: ClassVar[str | None] = "BPR-MF"
    quick_params: ClassVar[dict] = {"epochs": 2}
    #: Tuned by ``--tune``: around the grid of the module docstring (1.0 diverged; L2 includes 0).
    search_space: ClassVar[dict[str, Space]] = {
        "embedding_size": Int(25, 200, log=True),
        "learning_rate": Float(0.01, 0.5, log=True),
        "l2": Choice(0.0, 0.00001, 0.0001, 0.001, 0.01),
        "epochs": Int(10, 100, step=10),
    }

    item_factors_: torch.Tensor | None = None  # float32[n_items, embedding_size] h_i
    item_bias_: torch.Tensor | None = None  # float32[n_items] b_i, UNSEEN_SCORE for items without clicks
    seen_: np.ndarray | None = None  # bool[n_items] item has training clicks

    def __init__(
        self, embedding_size: int = 100, learning_rate: float = 0.1, l2: float = 0.0, epochs: int = 50, n_threads: int = 1
    ) -> None:
        self.embedding_size = embedding_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.epochs = epochs
        self.n_threads = n_threads
        check_params(
            self, embedding_size=POSITIVE_INT, learning_rate=POSITIVE, l2=NON_NEGATIVE, epochs=POSITIVE_INT,
            n_threads=POSITIVE_INT,
        )

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> BPRMF:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.recommender_base import ModelFitError

        self.device = "cpu"
        train = split.train
        sessions = np.repeat(np.arange(len(train), dtype=np.int64), train.lengths)
        # users = training sessions (rows), items = columns; implicit reads any non-zero as "clicked"
        user_items = sp.csr_matrix(
            (np.ones(train.n_clicks, dtype=np.float32), (sessions, train.items.astype(np.int64))),
            shape=(len(train), split.n_items),
        )
        user_items.sum_duplicates()
        model = BayesianPersonalizedRanking(
            factors=self.embedding_size,
            learning_rate=self.learning_rate,
            regularization=self.l2,
            iterations=self.epochs,
            num_threads=self.n_threads,
            random_state=np.random.default_rng(seed),
        )
        try:
            model.fit(user_items, show_progress=progress)
        except ModelFitError as e:  # implicit checks the factors for NaN after training
            raise FloatingPointError(f"BPRMF: {e} with learning_rate={self.learning_rate}; lower the learning rate") from e
        factors = np.asarray(model.item_factors, dtype=np.float32)
        seen = np.bincount(train.items, minlength=split.n_items) > 0
        self.seen_ = seen
        # items without clicks keep implicit's zero factors; their bias becomes the lowest score
        self.item_factors_ = torch.from_numpy(np.where(seen[:, None], factors[:, : self.embedding_size], 0.0).astype(np.float32))
        self.item_bias_ = torch.from_numpy(np.where(seen, factors[:, self.embedding_size], UNSEEN_SCORE).astype(np.float32))
        return self

    def score(self, batch: PrefixBatch) -> torch.Tensor:
        """float32[B, n_items]: <mean factors of the prefix's clicks, h_i> + b_i."""
        self._check_fitted("item_factors_", "item_bias_", "seen_")
        n_items = len(self.seen_)
        items = torch.from_numpy(batch.items)
        known = (items >= 0) & (items < n_items)
        known &= torch.from_numpy(self.seen_)[items.clamp(0, n_items - 1)]
        weights = known.to(torch.float32)
        weights /= weights.sum(1, keepdim=True).clamp_min(1.0)  # mean over the prefix's known clicks
        prefix = torch.einsum("bl,blk->bk", weights, self.item_factors_[items.clamp(0, n_items - 1)])
        return torch.addmm(self.item_bias_.expand(len(batch), -1), prefix, self.item_factors_.T)
