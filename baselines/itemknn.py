"""Item-KNN: recommend the items most similar to the last click (NARM paper, section 4.2).

The NARM paper describes Item-KNN as recommending "items similar to the actually viewed item",
similarity being "the co-occurrence number of two items in sessions divided by the square root
of the product of the number of sessions in which either item occurs", regularised "to avoid
coincidental high similarities of rarely visited items". Its baselines come from the GRU4Rec
authors (Hidasi et al., ICLR 2016); this file follows their reference code, ``CoOccurence`` in
``baselines.py`` of github.com/hidasib/GRU4Rec (checked at commit 5da3672f), whose form is::

    sim(i, j) = cooc(i, j) / ((supp_i + lambda)^alpha * (supp_j + lambda)^(1 - alpha))
    score(j | prefix) = sim(last click of the prefix, j)

with lambda = 20, alpha = 0.5 and only the 100 most similar items of each item kept (all other
items score 0; ``sim(i, i) = 0``). Two ways of counting, chosen by ``counting``:

- ``"events"`` (default, the reference code): ``supp_i`` is the number of training *clicks* on
  i (``data.groupby('ItemIdx').size()``), and for every click on i the reference adds 1 to each
  *distinct* item of that click's session (``iarray[items_of_session] += 1``: numpy's buffered
  fancy-index increment counts a repeated index once). So with C the session x item count
  matrix and B = (C > 0) its binary pattern, ``cooc = C^T B`` — not symmetric when a session
  repeats a click.
- ``"sessions"`` (the paper's words): ``supp_i`` is the number of training sessions containing
  i, and ``cooc = B^T B`` counts the sessions containing both items.

Row i of the similarity matrix is the last click, column j the candidate; alpha applies to the
last click's support, as in the reference's ``predict_next``.

Co-occurrence is computed with scipy.sparse, a block of item rows at a time so that memory
stays bounded at YOOCHOOSE 1/4 scale; each block is pruned to its top neighbours with one
vectorised sort. Scoring a batch gathers the rows of its last clicks from the sparse matrix.

Deviations from the paper/reference:

- Ties at the 100th neighbour are broken by the lower item index (the reference's
  ``np.argsort`` leaves them to the sort).
- Items without training clicks (e.g. on YOOCHOOSE fractions) score -1, below every trained
  item, so that they are never recommended; the reference only ever scores training items.
  A last click without training data (or outside the item range) gives 0 for every trained
  item.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from sessionbench.blocks import budget_blocks
from sessionbench.data import Sessions, Split
from sessionbench.params import NON_NEGATIVE, POSITIVE_INT, UNIT, check_params, one_of, optional
from sessionbench.recommender import PrefixBatch, Recommender
from sessionbench.search_space import Float, Int, Space

__all__ = ["ItemKNN"]

log = logging.getLogger(__name__)

#: Score of items without training clicks: below every similarity (all >= 0).
UNSEEN_SCORE = -1.0
#: Upper bound on the co-occurrence entries computed at once (memory ~ 20 bytes each).
_BLOCK_ENTRIES = 20_000_000
_COUNTINGS = ("events", "sessions")


class ItemKNN(Recommender):
    """Item-to-item similarity of the last click, regularised cosine of co-occurrence counts.

    Args:
        n_neighbors: Most similar items kept per item (the reference's ``n_sims``: 100; the
            suite's one spelling for neighbour counts); the others score 0. None keeps every
            co-occurring item.
        lmbd: lambda, added to both supports to damp similarities of rare items (reference: 20;
            spelt as in the reference, ``lambda`` being a Python keyword).
        alpha: Exponent of the last click's support; the candidate's gets 1 - alpha
            (reference: 0.5, the cosine form).
        counting: "events" counts clicks, as the reference code does; "sessions" counts
            sessions, as the paper's text says. See the module docstring.

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "itemknn"
    paper_row: ClassVar[str | None] = "Item-KNN"
    #: Tuned by ``--tune``: neighbours kept, the support damping lambda and the exponent alpha
    #: (the reference's 100, 20 and 0.5 lie inside; ``counting`` stays the reference's).
    search_space: ClassVar[dict[str, Space]] = {
        "n_neighbors": Int(20, 2000, log=True),
        "lmbd": Float(1.0, 200.0, log=True),
        "alpha": Float(0.0, 1.0),
    }

    similarities_: sp.csr_matrix | None = None  # float32[n_items + 1, n_items]; row = last click, last row empty
    seen_: np.ndarray | None = None  # bool[n_items] item has training clicks

    def __init__(self, n_neighbors: int | None = 100, lmbd: float = 20.0, alpha: float = 0.5, counting: str = "events") -> None:
        self.n_neighbors = n_neighbors
        self.lmbd = lmbd
        self.alpha = alpha
        self.counting = counting
        check_params(
            self, n_neighbors=optional(POSITIVE_INT), lmbd=NON_NEGATIVE, alpha=UNIT, counting=one_of(*_COUNTINGS)
        )

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> ItemKNN:
        self.device = "cpu"
        counts = _session_item_counts(split.train, split.n_items)  # C: sessions x items
        binary = counts.copy()
        binary.data[:] = 1.0  # B
        left = counts if self.counting == "events" else binary
        support = np.asarray(left.sum(axis=0)).ravel()  # clicks (events) or sessions per item
        left_t = left.T.tocsr()  # items x sessions
        # for planning blocks: an upper bound on the entries of each item's co-occurrence row
        bound = left_t @ np.asarray(binary.sum(axis=1)).ravel()
        norm_row = (support + self.lmbd) ** self.alpha
        norm_col = (support + self.lmbd) ** (1.0 - self.alpha)
        norm_row[norm_row == 0] = 1.0  # lmbd = 0 and no clicks: cooc is 0 there anyway (reference: norm 1)
        norm_col[norm_col == 0] = 1.0
        blocks = []
        for lo, hi in tqdm(budget_blocks(bound, _BLOCK_ENTRIES), desc="itemknn", unit="block", disable=not progress, leave=False):
            cooc = (left_t[lo:hi] @ binary).tocoo()
            rows, cols, values = cooc.row.astype(np.int64) + lo, cooc.col.astype(np.int64), cooc.data
            off_diagonal = rows != cols  # reference: iarray[i] = 0
            rows, cols, values = rows[off_diagonal], cols[off_diagonal], values[off_diagonal]
            sims = values / (norm_row[rows] * norm_col[cols])  # cooc / ((supp_i + l)^a (supp_j + l)^(1 - a))
            blocks.append(_top_per_row(rows, cols, sims, self.n_neighbors))
        rows, cols, sims = (np.concatenate([b[k] for b in blocks] or [np.zeros(0)]) for k in range(3))
        self.similarities_ = sp.csr_matrix(
            (sims.astype(np.float32), (rows.astype(np.int64), cols.astype(np.int64))), shape=(split.n_items + 1, split.n_items)
        )
        self.seen_ = support > 0
        log.debug("itemknn: %d similarities kept for %d items", self.similarities_.nnz, split.n_items)
        return self

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """float32[B, n_items]: similarity of every item to each prefix's last click."""
        self._check_fitted("similarities_", "seen_")
        n_items = self.similarities_.shape[1]
        last = batch.last_items
        last = np.where((last >= 0) & (last < n_items), last, n_items)  # unknown click -> the empty last row
        scores = self.similarities_[last].toarray()
        scores[:, ~self.seen_] = UNSEEN_SCORE
        return scores


def _session_item_counts(sessions: Sessions, n_items: int) -> sp.csr_matrix:
    """float64[n_sessions, n_items] CSR: clicks of each item in each session (duplicates summed)."""
    rows = np.repeat(np.arange(len(sessions), dtype=np.int64), sessions.lengths)
    data = np.ones(sessions.n_clicks, dtype=np.float64)
    matrix = sp.csr_matrix((data, (rows, sessions.items.astype(np.int64))), shape=(len(sessions), n_items))
    matrix.sum_duplicates()
    return matrix


def _top_per_row(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the ``k`` largest values of each row (ties: lower column first); all if k is None."""
    if k is None or len(rows) == 0:
        return rows, cols, values
    order = np.lexsort((cols, -values, rows))  # by row, then value descending, then column
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    keep = rank < k
    return rows[keep], cols[keep], values[keep]
