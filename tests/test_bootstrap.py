import numpy as np
import pytest

from sessionbench.bootstrap import case_metrics, paired_bootstrap


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
