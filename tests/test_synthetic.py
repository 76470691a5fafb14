"""The synthetic generator: seeded, structured, and shaped like DIGINETICA."""

import numpy as np

from sessionbench.data import load_dataset
from sessionbench.data.protocol import DAY
from sessionbench.data.synthetic import PRESETS, generate_clicks


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (generate_clicks(PRESETS["small"], seed) for seed in (0, 0, 1))
    np.testing.assert_array_equal(a.item, b.item)
    np.testing.assert_array_equal(a.order_key, b.order_key)
    assert not np.array_equal(a.item[:1000], c.item[:1000])


def test_small_preset_looks_like_diginetica():
    split = load_dataset("synthetic")
    stats = split.stats()
    assert 4.5 <= stats["avg_length"] <= 6.0
    assert split.train.lengths.max() >= 20  # a long tail
    span_days = (split.test.times.max() - split.train.times.min()) / DAY
    assert span_days > 21  # weeks, so the 7-day split applies
    counts = np.sort(np.bincount(split.train.items))[::-1]
    assert counts[: len(counts) // 10].sum() > 0.3 * counts.sum()  # skewed popularity


def test_file_rows_are_not_in_timeframe_order():
    clicks = generate_clicks(PRESETS["small"], 0)
    same_session = clicks.session[1:] == clicks.session[:-1]
    backwards = clicks.order_key[1:] < clicks.order_key[:-1]
    assert (backwards & same_session).sum() > 100


def test_sessions_follow_transitions_more_than_chance():
    split = load_dataset("synthetic")
    s = split.train
    src = s.items[:-1][np.diff(np.repeat(np.arange(len(s)), s.lengths)) == 0]
    dst = s.items[1:][np.diff(np.repeat(np.arange(len(s)), s.lengths)) == 0]
    pairs = src.astype(np.int64) * split.n_items + dst
    _, counts = np.unique(pairs, return_counts=True)
    # with a few successors per item, the most frequent pairs repeat far beyond chance
    assert counts.max() > 50 and (counts >= 5).sum() > 1000
