"""AR: association rules of the last click (Ludewig & Jannach, UMUAI 2018).

Simple association rules of size two: a rule a -> b counts how often a and b occur together in
a training session, in either order; an item is scored by the rule from the prefix's last click
to it::

    rule(a, b) = sum over training sessions s, over positions p != q of s,
                 of 1[s_p = a] * 1[s_q = b]
    score(b | prefix) = rule(last click of the prefix, b)

Every pair of positions counts, not every session: a session with a twice and b once adds 2
to a -> b and to b -> a, and 2 to a -> a (an item clicked twice is a rule of its own, added to
from both sides, as the reference's two increments of ``rules[a][a]`` do). With C the session x
item click counts, rule = C^T C - diag(clicks per item). Only the ``pruning`` heaviest rules of
each item are kept, ties going to the rule the reference creates first (see ``baselines/sr.py``).

Reference: github.com/rn5l/session-rec, ``algorithms/baselines/ar.py`` (class
``AssociationRules``), read at commit 5dcd583c (the file last changed in 9f719a67). Its only
setting is ``pruning=20`` (its weighting functions are never called), which session-rec's
configurations never tune; the ``search_space`` choices are ours. The reference reads the
clicks in order and, at each, pairs it with every earlier click of its session in order,
creating ``rules[earlier][click]`` and ``rules[click][earlier]``: that creation order breaks
ties. As in SR, the paper's normalisation and the code's division by the row maximum do not
change the ranking, and an unknown last click scores 0 everywhere.

The counting, pruning and scoring are SR's (:class:`baselines.sr.RuleRecommender`), with every
ordered pair of distinct positions of a session as an occurrence of weight 1. Sessions of
length L yield L (L - 1) pairs, generated a block of source items at a time.

Deviations from the paper/reference:

- Scores are the raw counts, not divided by their row maximum (same ranking).
- Items without training clicks score the lowest float32 value, below every rule, so that they
  are never recommended: the reference ranks only training items.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from baselines.sr import PRUNING, PRUNINGS, Clicks, Pairs, RuleRecommender
from sessionbench.data.sessions import ragged_ranges
from sessionbench.params import check_params
from sessionbench.search_space import Space

__all__ = ["AR"]


class AR(RuleRecommender):
    """Association rules: co-occurrence counts of two items in a session, either order.

    Args:
        pruning: Rules kept per item: 20 (session-rec), 0 for all, or a fraction in (0, 1) of
            each item's rules to drop.

    Raises:
        ValueError: ``pruning`` out of range (the message names it).
    """

    name: ClassVar[str] = "ar"
    paper_row: ClassVar[str | None] = None
    suites: ClassVar[tuple[str, ...]] = ("main",)
    #: session-rec never tunes AR; these choices are ours.
    search_space: ClassVar[dict[str, Space]] = {"pruning": PRUNINGS}

    def __init__(self, pruning: float = 20) -> None:
        self.pruning = pruning
        check_params(self, pruning=PRUNING)

    def _pair_counts(self, clicks: Clicks) -> np.ndarray:
        return clicks.length - 1

    def _pairs(self, clicks: Clicks, sources: np.ndarray) -> Pairs:
        # every other click of the source's session, in either order
        n = clicks.length[sources]
        source = np.repeat(sources, n)
        target = ragged_ranges(clicks.start[sources], n)
        other = source != target
        source, target = source[other], target[other]
        # the reference meets each pair at its later click, earlier clicks in order: that
        # orders the creation of one item's rules (its two rules of one meeting are in two rows)
        later, earlier = np.maximum(source, target), np.minimum(source, target)
        key = later * clicks.longest + (earlier - clicks.start[source])
        return source, target, np.ones(len(source)), key
