"""SR: sequential rules of the last click (Ludewig & Jannach, UMUAI 2018; after Kamehkhosh et
al., TempRec workshop at RecSys 2017).

A rule a -> b gains weight every time b follows a within ``steps`` clicks of one training
session; an item is scored by the rule from the prefix's last click to it::

    rule(a, b) = sum over training sessions s, over positions p < q of s with q - p <= steps,
                 of 1[s_p = a] * 1[s_q = b] * w(q - p)
    score(b | prefix) = rule(last click of the prefix, b)

with the gap weightings of the reference (``weighting``):

    same       w(g) = 1
    div        w(g) = 1 / g                    (default)
    linear     w(g) = 1 - 0.1 g if g <= 100 else 0   (0 at g = 10, negative beyond)
    quadratic  w(g) = 1 / g^2
    log        w(g) = 1 / log10(g + 1.7)

A repeated click counts like any other (a -> a rules exist). After counting, only the
``pruning`` heaviest rules of each item a are kept (0 keeps all; a fraction in (0, 1) drops
``floor(n_a * pruning)`` of item a's n_a rules). Ties at the cut go to the rule created first
while reading the training sessions in session-rec's order (session id, then click): the
reference keeps them with ``Counter.most_common``, which is stable in insertion order.

Reference: github.com/rn5l/session-rec, ``algorithms/baselines/sr.py`` (class
``SequentialRules``), read at commit 5dcd583c (the file last changed in 9f719a67). Its
defaults are ``steps=10, weighting='div', pruning=20``. The paper's formula divides by the
number of rule occurrences starting at the last click and the code divides each prediction by
its maximum; both are constant per prefix and leave the ranking as it is. Unknown last clicks
give all zeros in the reference (0 / 0 is turned into 0 by its evaluation); here too.
``search_space`` searches ``steps`` and ``weighting`` over session-rec's ``params_opt`` (e.g.
``conf/save/diginetica/single split/opt/single_digi_sr.yml``, which settled on steps 15, div;
``conf/save/rsc15_64/single_rsc15_64_baselines.yml`` uses steps 4, quadratic); session-rec
never tunes ``pruning``, so its choices are ours.

Rules are counted with numpy over the ragged click arrays: every (source click, following
click) pair is generated at once with ``ragged_ranges``, a block of source items at a time so
that memory stays bounded at YOOCHOOSE 1/4 scale, summed per (a, b) with one sort, pruned per
row with another, and stored as a CSR matrix whose rows are gathered at scoring time.
:class:`RuleRecommender` holds this machinery; ``baselines/ar.py`` (AR) reuses it.

Deviations from the paper/reference:

- The reference's options that are off by default are not offered: ``last_n_days``,
  ``idf_weight``, ``last_in_session`` and ``session_weighting``.
- Scores are the raw rule weights, not divided by their row maximum (same ranking).
- Rules are pruned on their float32 values (those scored). The reference compares float64 sums
  accumulated click by click, so two rules whose sums differ only by rounding can be tied here
  and ordered there (or the other way round).
- Items without training clicks score the lowest float32 value, below every rule, so that they
  are never recommended: the reference ranks only training items.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from sessionbench.blocks import budget_blocks
from sessionbench.data import Sessions, Split
from sessionbench.data.sessions import ragged_ranges
from sessionbench.params import POSITIVE_INT, Rule, check_params, is_integer, is_real, one_of
from sessionbench.recommender import PrefixBatch, Recommender
from sessionbench.search_space import Choice, Space

__all__ = ["PRUNING", "PRUNINGS", "SR", "UNSEEN_SCORE", "WEIGHTINGS", "Clicks", "Pairs", "RuleRecommender"]

log = logging.getLogger(__name__)

#: Score of items without training clicks: below every rule weight (linear ones can be < 0).
UNSEEN_SCORE = float(np.finfo(np.float32).min)
#: Upper bound on the click pairs generated at once (memory ~ 60 bytes each).
_BLOCK_PAIRS = 10_000_000

#: Weight of a rule occurrence by the gap g >= 1 between its clicks (session-rec's formulas).
WEIGHTINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "same": lambda g: np.ones_like(g),
    "div": lambda g: 1.0 / g,
    "linear": lambda g: np.where(g <= 100, 1.0 - 0.1 * g, 0.0),
    "quadratic": lambda g: 1.0 / (g * g),
    "log": lambda g: 1.0 / np.log10(g + 1.7),
}

#: session-rec's ``pruning``: 0 keeps every rule, an integer k the k heaviest per item, a
#: fraction f in (0, 1) drops floor(n f) of an item's n rules.
PRUNING = Rule(
    "0 (keep every rule), a positive integer (rules kept per item) or a fraction in (0, 1) (share dropped)",
    lambda v: (is_integer(v) and v >= 0) or (is_real(v) and 0 < v < 1),
)

#: session-rec tunes SR over these (``params_opt`` of e.g. conf/save/diginetica/single split/
#: opt/single_digi_sr.yml); it never tunes ``pruning``, whose choices here are ours.
_STEPS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 25, 30)
PRUNINGS = Choice(0, 10, 20, 50, 100)

#: Rule occurrences as (source, target, weight, key): int64 flat positions of the two clicks
#: (the rule is source item -> target item), the float64 weight, and an int64 key whose
#: smallest value over a rule's occurrences orders the rules of one item as the reference
#: creates them (its tie-breaker when pruning).
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class RuleRecommender(Recommender):
    """Scores each item by the weight of the rule (last click -> item); subclasses say which
    pairs of clicks make a rule occurrence (:meth:`_pairs`) and keep ``pruning`` rules per item."""

    pruning: float

    rules_: sp.csr_matrix | None = None  # float32[n_items + 1, n_items]; row = last click, last row empty
    base_: np.ndarray | None = None  # float32[n_items]: 0, or UNSEEN_SCORE for items without training clicks

    def _pair_counts(self, clicks: Clicks) -> np.ndarray:
        """int64[n_clicks]: rule occurrences whose source is each click."""
        raise NotImplementedError

    def _pairs(self, clicks: Clicks, sources: np.ndarray) -> Pairs:
        """The rule occurrences whose source click is at one of ``sources`` (int64 positions)."""
        raise NotImplementedError

    def fit(self, split: Split, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> RuleRecommender:
        self.device = "cpu"
        clicks = Clicks(split.train)
        self.rules_ = self._mine(clicks, split.n_items, progress)
        seen = np.bincount(clicks.items, minlength=split.n_items) > 0
        self.base_ = np.where(seen, 0.0, UNSEEN_SCORE).astype(np.float32)
        log.debug("%s: %d rules kept for %d items", self.name, self.rules_.nnz, split.n_items)
        return self

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """float32[B, n_items]: weight of the rule from each prefix's last click to every item."""
        self._check_fitted("rules_", "base_")
        n_items = self.rules_.shape[1]
        last = batch.last_items
        last = np.where((last >= 0) & (last < n_items), last, n_items)  # unknown click -> the empty last row
        scores = self.rules_[last].toarray()
        scores += self.base_  # rules never lead to an unseen item, so this sets them to UNSEEN_SCORE
        return scores

    def _mine(self, clicks: Clicks, n_items: int, progress: bool) -> sp.csr_matrix:
        """Count, sum and prune every rule, a block of source items at a time."""
        bound = np.bincount(clicks.items, weights=self._pair_counts(clicks), minlength=n_items)
        parts = []
        for lo, hi in tqdm(
            budget_blocks(bound, _BLOCK_PAIRS), desc=self.name, unit="block", disable=not progress, leave=False
        ):
            sources = np.flatnonzero((clicks.items >= lo) & (clicks.items < hi))
            source, target, weight, key = self._pairs(clicks, sources)
            rule = _sum_rules(clicks.items[source], clicks.items[target], weight, key, n_items)
            parts.append(_prune(*rule, self.pruning))
        rows, cols, values = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return sp.csr_matrix((values, (rows, cols)), shape=(n_items + 1, n_items), dtype=np.float32)


class SR(RuleRecommender):
    """Sequential rules: b after a within ``steps`` clicks, weighted by the gap.

    Args:
        steps: Largest gap (in clicks) between a rule's two clicks (session-rec: 10).
        weighting: Weight of an occurrence by its gap: "div" (1/g, session-rec's default),
            "same", "linear", "quadratic" or "log"; see the module docstring.
        pruning: Rules kept per item: 20 (session-rec), 0 for all, or a fraction in (0, 1) of
            each item's rules to drop.

    Raises:
        ValueError: a hyperparameter out of range (the message names it).
    """

    name: ClassVar[str] = "sr"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("main",)
    search_space: ClassVar[dict[str, Space]] = {
        "steps": Choice(*_STEPS),
        "weighting": Choice("linear", "div", "quadratic", "log"),
        "pruning": PRUNINGS,
    }

    def __init__(self, steps: int = 10, weighting: str = "div", pruning: float = 20) -> None:
        self.steps = steps
        self.weighting = weighting
        self.pruning = pruning
        check_params(self, steps=POSITIVE_INT, weighting=one_of(*WEIGHTINGS), pruning=PRUNING)

    def _pair_counts(self, clicks: Clicks) -> np.ndarray:
        return np.minimum(clicks.after, self.steps)

    def _pairs(self, clicks: Clicks, sources: np.ndarray) -> Pairs:
        n = np.minimum(clicks.after[sources], self.steps)
        source = np.repeat(sources, n)
        gap = ragged_ranges(np.ones(len(sources), dtype=np.int64), n)  # 1..n for each source
        target = source + gap
        weight = WEIGHTINGS[self.weighting](np.arange(1, self.steps + 1, dtype=np.float64))[gap - 1]
        # the reference creates rules click by click, from each earlier click to it: within
        # one source item's rules, the target click alone orders their creation
        return source, target, weight, target


class Clicks:
    """The training clicks in session-rec's reading order (session id, then click), flat.

    Attributes:
        items: int64[n_clicks] item of each click.
        start: int64[n_clicks] position of the first click of its session.
        length: int64[n_clicks] length of its session.
        after: int64[n_clicks] clicks after it in its session.
        longest: length of the longest session.
    """

    def __init__(self, sessions: Sessions) -> None:
        if np.any(np.diff(sessions.ids) < 0):  # the reference sorts its training data by session id
            sessions = sessions.select(np.argsort(sessions.ids, kind="stable"))
        lengths = sessions.lengths
        self.items = sessions.items.astype(np.int64)
        self.start = np.repeat(sessions.offsets[:-1], lengths)
        self.length = np.repeat(lengths, lengths)
        self.after = np.repeat(sessions.offsets[1:], lengths) - 1 - np.arange(len(self.items))
        self.longest = int(lengths.max()) if len(lengths) else 0


def _sum_rules(
    rows: np.ndarray, cols: np.ndarray, weight: np.ndarray, key: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One entry per distinct (row, col): summed weight (float32) and smallest key, sorted."""
    pair = rows * n_items + cols
    if len(pair) == 0:
        return pair, pair, np.zeros(0, np.float32), pair
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    values = np.add.reduceat(weight[order], starts).astype(np.float32)
    first = np.minimum.reduceat(key[order], starts)
    return pair[starts] // n_items, pair[starts] % n_items, values, first


def _prune(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, first: np.ndarray, pruning: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heaviest rules of each row, as session-rec's ``prune`` keeps them (ties: smaller key)."""
    if pruning == 0 or len(rows) == 0:
        return rows, cols, values
    order = np.lexsort((first, -values, rows))  # by row, weight descending, then creation order
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    sizes = np.diff(np.r_[starts, len(rows)])
    kept = sizes - np.floor(sizes * pruning).astype(np.int64) if pruning < 1 else np.full(len(sizes), pruning)
    rank = np.arange(len(rows)) - np.repeat(starts, sizes)
    keep = rank < np.repeat(kept, sizes)
    return rows[keep], cols[keep], values[keep]
