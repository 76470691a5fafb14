"""Ragged sessions, prefix cases and batches."""

import numpy as np
import pytest

from sessionbench.data import Sessions
from sessionbench.data.sessions import ragged_ranges
from sessionbench.recommender import PAD
from sessionbench.training import holdout_recent, prefix_batches


def sessions() -> Sessions:
    return Sessions.from_lists([[5, 6, 7], [1, 2], [3, 4, 5, 6]], times=[10.0, 20.0, 30.0])


def test_ragged_ranges():
    assert ragged_ranges(np.array([3, 10, 0]), np.array([2, 0, 3])).tolist() == [3, 4, 0, 1, 2]


def test_every_prefix_is_a_case_shortest_first():
    s = sessions()
    session, length = s.prefix_cases()
    assert session.tolist() == [0, 0, 1, 2, 2, 2] and length.tolist() == [1, 2, 1, 1, 2, 3]
    assert s.n_prefixes == 6 and s.prefix_lengths().tolist() == [1, 2, 1, 1, 2, 3]


def test_batches_are_left_aligned_and_padded():
    batch = next(sessions().prefix_batches(batch_size=4))
    assert batch.items.tolist() == [[5, PAD], [5, 6], [1, PAD], [3, PAD]]
    assert batch.lengths.tolist() == [1, 2, 1, 1] and batch.targets.tolist() == [6, 7, 2, 4]
    assert batch.last_items.tolist() == [5, 6, 1, 3]
    assert batch.mask.sum() == 5 and batch.items.dtype == np.int64


def test_max_length_keeps_the_last_clicks():
    batches = list(sessions().prefix_batches(batch_size=10, max_length=2))
    assert len(batches) == 1
    assert batches[0].items[-1].tolist() == [4, 5] and batches[0].targets[-1] == 6


def test_training_batches_can_keep_the_first_clicks():
    rng = np.random.default_rng(0)
    cases = [b for b in prefix_batches(sessions(), 100, rng, max_length=2, keep="first")]
    rows = {(tuple(i for i in r if i != PAD), t) for b in cases for r, t in zip(b.items.tolist(), b.targets.tolist())}
    assert ((3, 4), 6) in rows  # prefix 3 4 5 cut to its first two clicks, target unchanged
    assert len(rows) == 6


def test_shuffled_batches_cover_every_case_once():
    s = sessions()
    rng = np.random.default_rng(1)
    targets = sorted(t for b in prefix_batches(s, 4, rng) for t in b.targets.tolist())
    assert targets == sorted([6, 7, 2, 4, 5, 6])


def test_select_and_holdout_recent_keep_whole_sessions():
    s = sessions()
    assert s.select(np.array([2, 0])).to_lists() == [[3, 4, 5, 6], [5, 6, 7]]
    train, valid = holdout_recent(s, 0.3)
    assert train.to_lists() == [[5, 6, 7], [1, 2]] and valid.to_lists() == [[3, 4, 5, 6]]
    with pytest.raises(ValueError):
        holdout_recent(s, 1.5)


def test_inconsistent_offsets_are_refused():
    with pytest.raises(ValueError, match="offsets ends at 3 but there are 4 clicks"):
        Sessions(np.arange(4, dtype=np.int32), np.array([0, 3]), np.zeros(1), np.zeros(1, dtype=np.int64))
