import numpy as np
import pytest

from sessionbench.bootstrap import case_metrics, paired_bootstrap, paired_bootstrap_columns


def crafted(n_sessions: int, shift: float, seed: int = 0):
    """Two methods on sessions of 1-6 cases: per-session quality shared by both, and y trailing
    x by ``shift`` in expectation; cases of one session move together."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, n_sessions)
    session = np.repeat(np.arange(n_sessions), lengths)
    quality = rng.random(n_sessions)[session]
    x = quality + 0.05 * rng.standard_normal(len(session))
    y = x - shift + 0.02 * rng.standard_normal(len(session))
    return x, y, session


def test_the_interval_covers_the_known_difference_and_excludes_zero():
    x, y, session = crafted(3000, 0.03)
    result = paired_bootstrap(x, y, session, n_resamples=1000, seed=1)
    assert result.low < 0.03 < result.high
    assert result.low > 0 and result.p_value <= 0.002
    assert result.n_sessions == 3000 and result.n_resamples == 1000


def test_no_difference_gives_an_interval_around_zero_and_a_large_p_value():
    x, _, session = crafted(2000, 0.0)
    rng = np.random.default_rng(3)
    y = x + 0.05 * rng.standard_normal(len(x))  # noise without a shift
    result = paired_bootstrap(x, y, session, n_resamples=1000)
    assert result.low < 0 < result.high and result.p_value > 0.05


def test_resampling_sessions_widens_the_interval_when_cases_of_a_session_move_together():
    # each session's cases share one difference: 300 sessions of 10 cases carry the
    # information of 300 cases, not 3000
    rng = np.random.default_rng(4)
    session = np.repeat(np.arange(300), 10)
    d = rng.standard_normal(300)[session]
    by_session = paired_bootstrap(d, np.zeros_like(d), session, n_resamples=1000)
    by_case = paired_bootstrap(d, np.zeros_like(d), np.arange(len(d)), n_resamples=1000)
    assert (by_session.high - by_session.low) > 2.5 * (by_case.high - by_case.low)


def test_case_metrics_are_the_hits_and_reciprocal_ranks_that_average_to_the_table():
    greater, equal = np.array([0, 3, 19, 25]), np.array([0, 1, 0, 0])
    m = case_metrics(greater, equal, k=20)
    np.testing.assert_array_equal(m["recall@20"], [1, 1, 1, 0])
    np.testing.assert_allclose(m["mrr@20"], [1, 1 / 5, 1 / 20, 0])


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap(np.zeros(3), np.zeros(2), np.zeros(3))


def test_every_column_of_the_two_dimensional_form_is_the_one_dimensional_form_with_the_same_seed():
    x0, y0, session = crafted(1500, 0.03, seed=5)
    rng = np.random.default_rng(6)
    x = np.column_stack([x0, rng.random(len(x0)), x0 ** 2])  # three comparisons, of different sizes
    y = np.column_stack([y0, rng.random(len(x0)), y0 ** 2])
    columns = paired_bootstrap_columns(x, y, session, n_resamples=500, seed=7)
    assert len(columns) == 3
    for j, result in enumerate(columns):
        alone = paired_bootstrap(x[:, j], y[:, j], session, n_resamples=500, seed=7)
        np.testing.assert_allclose([result.difference, result.low, result.high], [alone.difference, alone.low, alone.high], rtol=1e-12)
        assert (result.p_value, result.n_sessions, result.n_resamples) == (alone.p_value, 1500, 500)
    other_seed = paired_bootstrap(x[:, 0], y[:, 0], session, n_resamples=500, seed=8)
    assert (other_seed.low, other_seed.high) != (columns[0].low, columns[0].high)  # the seed does pick the resamples


def test_the_resamples_are_those_of_drawing_sessions_with_replacement():
    # the same draws as rng.integers(0, n_sessions, (n_resamples, n_sessions)) from the seed
    x, y, session = crafted(200, 0.02, seed=9)
    result = paired_bootstrap(x, y, session, n_resamples=300, seed=11)
    d, count = np.bincount(session, weights=x - y), np.bincount(session)
    drawn = np.random.default_rng(11).integers(0, 200, size=(300, 200))
    expected = d[drawn].sum(axis=1) / count[drawn].sum(axis=1)
    np.testing.assert_allclose([result.low, result.high], np.percentile(expected, [2.5, 97.5]), rtol=1e-10)
    assert result.p_value == max(2 * min((expected <= 0).mean(), (expected >= 0).mean()), 1 / 300)


def test_the_two_dimensional_form_refuses_columns_that_do_not_pair():
    with pytest.raises(ValueError, match="of one shape"):
        paired_bootstrap_columns(np.zeros((4, 2)), np.zeros((4, 3)), np.arange(4))
    with pytest.raises(ValueError, match="one-dimensional"):
        paired_bootstrap(np.zeros((4, 2)), np.zeros((4, 2)), np.arange(4))
