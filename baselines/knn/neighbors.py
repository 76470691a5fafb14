"""What the four session-kNN methods share: the training sessions indexed for the "recent"
sample, the prefixes of a batch as sets of items, the sample, the top-k neighbours, and
scattering neighbour scores onto items.

The methods (``sknn``, ``vsknn``, ``stan``, ``vstan``) follow session-rec (github.com/rn5l/
session-rec, ``algorithms/knn/*.py``). Each of them, for a prefix with item set A:

1. takes as candidates the training sessions that share an item with A;
2. keeps the ``sample_size`` most recent of them (session-rec's ``sampling="recent"``);
3. computes a similarity to each, keeps the ``n_neighbors`` most similar (similarity > 0);
4. scores every item of every neighbour from the neighbour's similarity.

Only steps 3 and 4 differ between the methods, and they live in the methods' files.

How it is done without a loop over prefixes:

- At fit the sessions are put in time order, so a session's rank is its recency, and each item's
  list of sessions (the item -> sessions index) is cut to its ``sample_size`` most recent. This
  loses nothing: a session among the ``sample_size`` most recent of a union of item lists has
  fewer than ``sample_size`` more recent sessions in the union, so also in each of its items'
  lists, so it is among the ``sample_size`` most recent of each list it is in. The same argument
  shows that the cut lists hold *every* item a sampled session shares with the prefix, so the
  overlaps computed from them are exact.
- A batch's prefixes become a sparse (rows x items) matrix Q. Its product with the cut index
  (items x sessions) lists every candidate of every row with the number of items it shares
  and, for the weighted methods, the sum of the shared items' weights. Both come out of one
  complex product, Q = 1 + i*w: the real part counts (it is >= 1, so scipy never drops an
  entry whose weights cancel or underflow) and the imaginary part sums the weights.
- Per row, the sample is the last ``sample_size`` columns (session ranks are sorted); the top
  neighbours are found with one ``np.partition`` of the rows that have more than
  ``n_neighbors`` candidates (no sort); the neighbours' items are expanded with ragged ranges
  and summed per (row, item) with a bincount, straight into the float32 score rows.

Rows are scored in chunks sized so that the sparse product and the partition table stay
bounded (a few hundred MB), whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sessionbench.blocks import budget_blocks
from sessionbench.data import Sessions, Split
from sessionbench.data.sessions import ragged_ranges
from sessionbench.recommender import PrefixBatch, Recommender

__all__ = [
    "Candidates",
    "ItemScores",
    "Neighbours",
    "Prefixes",
    "SessionIndex",
    "SessionKNN",
    "build_index",
    "cosine",
    "idf_of_clicks",
    "read_prefixes",
    "recent_candidates",
    "scatter_scores",
    "top_neighbours",
]

#: Candidate (row, session) entries a chunk's sparse product may produce (~ 60 bytes each).
_PAIR_BUDGET = 4_000_000
#: Entries of a chunk's table for the top-k partition (rows x sample_size at most, 8 bytes each).
_TABLE_BUDGET = 16_000_000


@dataclass(frozen=True)
class SessionIndex:
    """The training sessions in time order (rank 0 = oldest), as the methods look them up.

    Attributes:
        n_items: Width of the score rows.
        times: float64[S]. Session times, ascending (``Sessions.times``).
        last_position: CSR int64[S, n_items]. Row s holds the distinct items of session s
            (sorted by item) with the 1-based position of each one's last click in s.
        postings: CSR complex128[n_items, S], data 1. Row i lists the ``sample_size`` most
            recent sessions containing item i (ascending rank).
        clicks: int64[n_items]. Training clicks per item (repeats counted).
    """

    n_items: int
    times: np.ndarray
    last_position: sp.csr_matrix
    postings: sp.csr_matrix
    clicks: np.ndarray

    @property
    def n_sessions(self) -> int:
        return len(self.times)

    @property
    def session_sizes(self) -> np.ndarray:
        """int64[S]: distinct items per session."""
        return np.diff(self.last_position.indptr)


def build_index(train: Sessions, n_items: int, sample_size: int) -> SessionIndex:
    """Index ``train`` for prefixes over items 0..n_items-1, each item's sessions cut to its
    ``sample_size`` most recent. Sessions of equal time keep their order in ``train`` (the
    later one counts as more recent)."""
    sessions = train.select(np.argsort(train.times, kind="stable"))
    n = len(sessions)
    rows = np.repeat(np.arange(n, dtype=np.int64), sessions.lengths)
    position = ragged_ranges(np.ones(n, dtype=np.int64), sessions.lengths)  # 1-based, repeats counted
    rows, items, position = _last_of_each(rows, sessions.items.astype(np.int64), position)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
    last_position = sp.csr_matrix((position, items, indptr), shape=(n, n_items))
    # item -> sessions: the same entries ordered by item, then rank; keep each item's last ones
    by_item = np.lexsort((rows, items))
    item_sorted, session_sorted = items[by_item], rows[by_item]
    keep = _rank_from_end(item_sorted) < sample_size
    item_sorted, session_sorted = item_sorted[keep], session_sorted[keep]
    post_ptr = np.concatenate([[0], np.cumsum(np.bincount(item_sorted, minlength=n_items))]).astype(np.int64)
    ones = np.ones(len(session_sorted), dtype=np.complex128)
    postings = sp.csr_matrix((ones, session_sorted, post_ptr), shape=(n_items, n))
    clicks = np.bincount(sessions.items, minlength=n_items).astype(np.int64)
    return SessionIndex(n_items, sessions.times.astype(np.float64), last_position, postings, clicks)


def idf_of_clicks(index: SessionIndex) -> np.ndarray:
    """float64[n_items]: session-rec's IDF, ln(sessions / clicks of the item); 0 where unclicked.

    session-rec counts the item's clicks (``train.groupby(item).size()``), not its sessions,
    so an item clicked more often than there are sessions gets a negative IDF."""
    idf = np.zeros(index.n_items, dtype=np.float64)
    clicked = index.clicks > 0
    idf[clicked] = np.log(index.n_sessions / index.clicks[clicked])
    return idf


@dataclass(frozen=True)
class Prefixes:
    """The prefixes of a batch as sets of items: one entry per distinct (row, item), sorted by
    row, then item.

    Attributes:
        length: int64[B]. Clicks in each prefix (repeats counted).
        row, item: int64[P]. The entry's row and item (any int, also outside 0..n_items-1).
        last: int64[P]. 1-based position of the item's last click in its prefix.
        known: bool[P]. The item is in 0..n_items-1 (only those can be in a training session).
    """

    length: np.ndarray
    row: np.ndarray
    item: np.ndarray
    last: np.ndarray
    known: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.length)

    @property
    def distinct(self) -> np.ndarray:
        """int64[B]: distinct items per prefix (unknown ones too)."""
        return np.bincount(self.row, minlength=self.n_rows)

    def rows(self, lo: int, hi: int) -> Prefixes:
        """Rows lo..hi-1, renumbered from 0."""
        a, b = np.searchsorted(self.row, [lo, hi])
        return Prefixes(self.length[lo:hi], self.row[a:b] - lo, self.item[a:b], self.last[a:b], self.known[a:b])


def read_prefixes(batch: PrefixBatch, n_items: int) -> Prefixes:
    """The distinct items of each prefix of ``batch`` (the first ``lengths[b]`` clicks of row b)."""
    lengths = np.asarray(batch.lengths, dtype=np.int64)
    width = batch.items.shape[1]
    rows, cols = np.nonzero(np.arange(width)[None, :] < lengths[:, None])
    items = np.asarray(batch.items, dtype=np.int64)[rows, cols]
    rows, items, last = _last_of_each(rows.astype(np.int64), items, cols.astype(np.int64) + 1)
    return Prefixes(lengths, rows, items, last, (items >= 0) & (items < n_items))


@dataclass(frozen=True)
class Candidates:
    """The sample: for each row, its ``sample_size`` most recent candidate sessions.

    Attributes:
        row, session: int64[C]. Sorted by row, then session rank.
        shared: int64[C]. Distinct items the session shares with the row's prefix.
        weighted: float64[C]. Sum of the shared items' weights.
    """

    row: np.ndarray
    session: np.ndarray
    shared: np.ndarray
    weighted: np.ndarray


def recent_candidates(index: SessionIndex, prefixes: Prefixes, weights: np.ndarray, sample_size: int) -> Candidates:
    """The ``sample_size`` most recent training sessions sharing an item with each prefix.

    Args:
        weights: float64[P], one per entry of ``prefixes``; summed over the shared items.
    """
    known = prefixes.known
    q = sp.csr_matrix(
        (1.0 + 1j * weights[known], (prefixes.row[known], prefixes.item[known])),
        shape=(prefixes.n_rows, index.n_items),
        dtype=np.complex128,
    )
    product = q @ index.postings  # [B, S]: real = shared items, imag = their summed weights
    product.sort_indices()
    counts = np.diff(product.indptr)
    row = np.repeat(np.arange(prefixes.n_rows, dtype=np.int64), counts)
    from_end = np.repeat(product.indptr[1:], counts) - np.arange(product.nnz)  # 1 = most recent
    keep = from_end <= sample_size
    data = product.data[keep]
    return Candidates(
        row[keep], product.indices[keep].astype(np.int64), np.rint(data.real).astype(np.int64), data.imag.copy()
    )


def cosine(index: SessionIndex, prefixes: Prefixes, candidates: Candidates, weights: np.ndarray) -> np.ndarray:
    """float64[C]: session-rec's weighted cosine of each candidate with its prefix,

        sum over shared items of w(i) / (sqrt(sum over the prefix's items of w(i)^2) * sqrt(|n|))

    with ``weights`` w one per prefix entry (unknown items count in the norm) and |n| the
    candidate's distinct items; 0 where the prefix's norm is 0."""
    norm = np.sqrt(np.bincount(prefixes.row, weights=weights**2, minlength=prefixes.n_rows))
    denominator = norm[candidates.row] * np.sqrt(index.session_sizes[candidates.session])
    safe = denominator > 0
    return np.where(safe, candidates.weighted / np.where(safe, denominator, 1.0), 0.0)


@dataclass(frozen=True)
class Neighbours:
    """The chosen neighbours of each row and the clicks they are scored from.

    Attributes:
        row, session: int64[N]. Sorted by row, then session rank.
        similarity: float64[N].
        start: int64[N]. Where each neighbour's items begin in the expanded arrays below.
        item_row, item, item_position: int64[E]. The distinct items of every neighbour, with
            the neighbour's row and the 1-based position of the item's last click in the
            neighbour session.
        prefix_position: int64[E]. 1-based position of the item's last click in the row's
            prefix, 0 if the prefix does not contain it.
    """

    row: np.ndarray
    session: np.ndarray
    similarity: np.ndarray
    start: np.ndarray
    item_row: np.ndarray
    item: np.ndarray
    item_position: np.ndarray
    prefix_position: np.ndarray

    def per_neighbour_max(self, values: np.ndarray) -> np.ndarray:
        """float/int[N]: the maximum of ``values`` (one per expanded item) over each neighbour."""
        if len(self.row) == 0:
            return np.zeros(0, dtype=values.dtype)
        return np.maximum.reduceat(values, self.start)

    @property
    def owner(self) -> np.ndarray:
        """int64[E]: the neighbour each expanded item belongs to (index into ``row``)."""
        return np.repeat(np.arange(len(self.row), dtype=np.int64), np.diff(np.r_[self.start, len(self.item)]))


def top_neighbours(
    index: SessionIndex, prefixes: Prefixes, candidates: Candidates, similarity: np.ndarray, k: int
) -> Neighbours:
    """The ``k`` candidates of each row with the highest positive similarity; ties go to the
    more recent session. Their items are expanded, each with where it is in the prefix."""
    positive = similarity > 0  # session-rec: `if similarity > 0` (the rest could not score)
    row, session, sim = candidates.row[positive], candidates.session[positive], similarity[positive]
    keep = _top_per_row(row, sim, k, prefixes.n_rows)
    row, session, sim = row[keep], session[keep], sim[keep]
    lp = index.last_position
    sizes = np.diff(lp.indptr)[session]
    spans = ragged_ranges(lp.indptr[session], sizes)
    item_row, item = np.repeat(row, sizes), lp.indices[spans].astype(np.int64)
    start = np.cumsum(sizes) - sizes
    # where each neighbour item sits in the prefix: look up (row, item) among the prefix's known
    # entries, whose keys row * n_items + item are sorted and distinct
    known = prefixes.known
    prefix_key = prefixes.row[known] * index.n_items + prefixes.item[known]
    prefix_last = prefixes.last[known]
    key = item_row * index.n_items + item
    prefix_position = np.zeros(len(key), dtype=np.int64)
    if len(prefix_key):
        at = np.minimum(np.searchsorted(prefix_key, key), len(prefix_key) - 1)
        found = prefix_key[at] == key
        prefix_position[found] = prefix_last[at[found]]
    return Neighbours(row, session, sim, start, item_row, item, lp.data[spans].astype(np.int64), prefix_position)


@dataclass(frozen=True)
class ItemScores:
    """Sparse scores of one chunk of rows: the summed value of each scored (row, item)."""

    row: np.ndarray
    item: np.ndarray
    value: np.ndarray


def scatter_scores(neighbours: Neighbours, values: np.ndarray, n_items: int) -> ItemScores:
    """``values`` (one per expanded neighbour item) summed per (row, item)."""
    key, where = np.unique(neighbours.item_row * n_items + neighbours.item, return_inverse=True)
    return ItemScores(key // n_items, key % n_items, np.bincount(where, weights=values, minlength=len(key)))


class SessionKNN(Recommender):
    """Fit and chunked scoring shared by the session-kNN methods.

    Subclasses store ``n_neighbors`` and ``sample_size`` and implement :meth:`_score_rows`.
    """

    n_neighbors: int
    sample_size: int
    index_: SessionIndex | None = None  # the training sessions, set by fit

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> SessionKNN:
        """Index ``split.train`` (deterministic: ``seed`` is unused; ``device`` is always cpu)."""
        self.device = "cpu"
        self.index_ = build_index(split.train, split.n_items, self.sample_size)
        self._fit_extra(self.index_)
        return self

    def _fit_extra(self, index: SessionIndex) -> None:
        """What a method derives from the index at fit (e.g. IDF); nothing by default."""

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """float32[B, n_items]: the method's item scores after each prefix; 0 = not scored."""
        self._check_fitted("index_")
        index = self.index_
        prefixes = read_prefixes(batch, index.n_items)
        out = np.zeros((prefixes.n_rows, index.n_items), dtype=np.float32)
        for lo, hi in _chunks(index, prefixes, self.sample_size):
            scores = self._score_rows(index, prefixes.rows(lo, hi))
            out[lo + scores.row, scores.item] = scores.value
        return out

    def _score_rows(self, index: SessionIndex, prefixes: Prefixes) -> ItemScores:
        """The scored items of one chunk of prefixes (rows numbered from 0)."""
        raise NotImplementedError


def _chunks(index: SessionIndex, prefixes: Prefixes, sample_size: int) -> list[tuple[int, int]]:
    """Row ranges whose candidate entries and partition table stay within the budgets (one row
    at least)."""
    known = prefixes.known
    posting_sizes = np.diff(index.postings.indptr)
    cost = np.bincount(prefixes.row[known], weights=posting_sizes[prefixes.item[known]], minlength=prefixes.n_rows)
    return budget_blocks(cost, _PAIR_BUDGET, max_rows=max(1, _TABLE_BUDGET // sample_size))


def _last_of_each(rows: np.ndarray, items: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, ...]:
    """One entry per distinct (row, item), sorted by row then item, keeping the largest position."""
    order = np.lexsort((position, items, rows))
    rows, items, position = rows[order], items[order], position[order]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    return rows[last], items[last], position[last]


def _top_per_row(row: np.ndarray, value: np.ndarray, k: int, n_rows: int) -> np.ndarray:
    """bool mask of the ``k`` largest values of each row, for entries sorted by row and, within a
    row, by recency (oldest first); of equal values at the cut the more recent (later) win.

    Rows with more than k entries find their k-th largest value with one ``np.partition`` of a
    padded table (linear time, no sort); entries above it are kept, and of those equal to it
    the latest ones up to k.
    """
    counts = np.bincount(row, minlength=n_rows)
    over = counts > k
    if not over.any():
        return np.ones(len(row), dtype=bool)
    start = np.cumsum(counts) - counts
    in_over = over[row]
    table = np.full((int(over.sum()), int(counts.max())), -np.inf)
    table_row = (np.cumsum(over) - 1)[row[in_over]]
    table[table_row, (np.arange(len(row)) - start[row])[in_over]] = value[in_over]
    threshold = np.full(n_rows, -np.inf)  # rows with at most k entries keep all (values > 0)
    threshold[over] = -np.partition(-table, k - 1, axis=1)[:, k - 1]
    above = value > threshold[row]
    tied = np.flatnonzero(value == threshold[row])
    room = k - np.bincount(row[above], minlength=n_rows)  # places left for the tied entries
    keep = above
    keep[tied] = _rank_from_end(row[tied]) < room[row[tied]]
    return keep


def _rank_from_start(groups: np.ndarray) -> np.ndarray:
    """int64: 0-based rank of each entry inside its run of equal ``groups`` values."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))


def _rank_from_end(groups: np.ndarray) -> np.ndarray:
    """int64: 0-based rank of each entry from the end of its run of equal ``groups`` values."""
    return _rank_from_start(groups[::-1])[::-1]
