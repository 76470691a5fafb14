"""Issue 20, class 2: a model never sees the answer."""


import numpy as np
import pytest
from integrity_plugins import Peeker, Scores, run

from sessionbench.testing import RecommenderContract

# 2. A model never sees the answer


def test_issue_20_a_model_that_reads_the_targets_cannot_score_them(tmp_path):
    outcome = run(tmp_path, "integrity_plugins:Peeker")
    assert outcome.status == "failed" or outcome.result["metrics"]["recall@20"] < 0.5


def test_issue_20_no_batch_holds_a_longer_prefix_of_a_session_beside_a_shorter_one(tmp_path):
    outcome = run(tmp_path, "integrity_plugins:NextRow")
    assert outcome.result["metrics"]["recall@20"] < 0.2  # it scored 0.74 when batches ran session by session


def test_issue_20_a_model_that_writes_into_its_batch_is_graded_as_if_it_had_not(tmp_path):
    vandal, honest = run(tmp_path, "integrity_plugins:Vandal"), run(tmp_path, "integrity_plugins:Honest")
    assert vandal.result["by_ties"] == honest.result["by_ties"]
    with np.load(vandal.path.with_suffix(".npz")) as a, np.load(honest.path.with_suffix(".npz")) as b:
        assert all(np.array_equal(a[k], b[k]) for k in ("greater", "equal", "prefix_lengths"))


def test_issue_20_fit_sees_no_test_session(tmp_path):
    outcome = run(tmp_path, "integrity_plugins:Memoriser")
    assert outcome.status == "ran", outcome.error


def test_issue_20_the_contract_passes_no_targets_and_fails_a_model_that_learns_nothing():
    class PeekerContract(RecommenderContract):
        def make(self):
            return Peeker()

    class RandomContract(RecommenderContract):
        def make(self):
            return Scores()

    split = PeekerContract().split()
    assert PeekerContract()._batch(split).targets is None
    with pytest.raises(AssertionError, match="does not beat random"):  # it found no answer to read
        PeekerContract().test_beats_random_on_the_oracle_split()
    with pytest.raises(AssertionError, match="does not beat random scores on the contract's oracle split"):
        RandomContract().test_beats_random_on_the_oracle_split()


