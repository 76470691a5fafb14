"""The fair protocol for trained models: select the epochs on the validation hold-out of the
training sessions, then refit on all of the training data for exactly that many epochs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from narm import NARM
from sessionbench.cases import holdout
from sessionbench.data import Split
from sessionbench.evaluation import evaluate
from sessionbench.testing import oracle_split
from sessionbench.training import EpochLog, phase_checkpoint, selected_epochs, selection_record

TINY = {"embedding_size": 8, "hidden_size": 12, "epochs": 5, "patience": None, "batch_size": 64}

pytestmark = pytest.mark.usefixtures("one_thread")


class _Tripwire:
    """Stands in for the test sessions: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the fit read the test sessions (.{name})")

    def __len__(self):
        raise AssertionError("the fit read the test sessions (len)")


def _record_training(monkeypatch) -> list[dict]:
    """Record every training phase NARM runs: its cases, validation cases and epochs."""
    calls, train = [], NARM._train

    def recording(self, cases, valid, rng, gen, init, epochs, *rest):
        calls.append({"cases": cases, "valid": valid, "epochs": epochs, "init": init})
        return train(self, cases, valid, rng, gen, init, epochs, *rest)

    monkeypatch.setattr(NARM, "_train", recording)
    return calls


def test_the_refit_trains_on_every_training_case_for_the_selected_epochs(monkeypatch):
    split = oracle_split(n_train=200)
    curve = iter([0.10, 0.30, 0.25, 0.20, 0.15])  # the validation Recall@20 peaks at epoch 2
    monkeypatch.setattr(NARM, "_recall", lambda self, cases: next(curve))
    calls = _record_training(monkeypatch)
    rec = NARM(**TINY).fit(split, seed=0, progress=False)
    select, refit = calls
    held_train, held_valid = holdout(split.train, "recent", 0.1, np.random.default_rng(0), 19, "last")
    assert len(select["cases"]) == len(held_train) and len(select["valid"]) == len(held_valid)
    assert select["epochs"] == 5 and len(select["cases"]) + len(select["valid"]) == split.train.n_prefixes
    # the refit: every training case (the validation sessions too), no validation, 2 epochs
    assert refit["valid"] is None and refit["epochs"] == 2
    assert len(refit["cases"]) == split.train.n_prefixes
    every = split.train.gather_prefixes(*split.train.prefix_cases())
    np.testing.assert_array_equal(refit["cases"].targets.numpy(), every.targets)
    assert refit["init"] == select["init"]  # the same initial weights
    assert [h.epoch for h in rec.history_] == [0, 1] and all(h.validation is None for h in rec.history_)
    assert rec.selection_ == {
        "metric": "recall@20",
        "on": "10% of the training cases, the most recent sessions",
        "epochs": 2,
        "epochs_run": 5,
        "curve": [0.1, 0.3, 0.25, 0.2, 0.15],
        "seconds": rec.selection_["seconds"],
    }
    assert "2 epochs selected of 5 run" in rec.fit_report_["selection"]


def test_selection_never_reads_the_test_sessions(monkeypatch):
    """A fit given a split whose test sessions it cannot touch trains as one given the real test
    sessions: had any choice looked at the test set, the two would differ or the tripwire fire."""
    split = oracle_split(n_train=200)
    blind = Split(split.name, split.train, _Tripwire(), split.n_items, split.item_ids, split.info, split.full_train)
    seen = NARM(**TINY).fit(split, seed=1, progress=False)
    unseen = NARM(**TINY).fit(blind, seed=1, progress=False)
    assert seen.selection_ == {**unseen.selection_, "seconds": seen.selection_["seconds"]}
    batch = next(split.test.prefix_batches(64))
    np.testing.assert_array_equal(seen.score(batch).numpy(), unseen.score(batch).numpy())


def test_a_peeking_epoch_is_not_chosen(monkeypatch):
    """The validation split alone picks the epochs: here it prefers epoch 1, while five epochs
    score higher on the test set; the fit takes 1."""
    split = oracle_split(n_train=200)
    params = {**TINY, "learning_rate": 0.01}
    honest = iter([0.5, 0.1, 0.1, 0.1, 0.1])
    monkeypatch.setattr(NARM, "_recall", lambda self, cases: next(honest))
    chosen = NARM(**params).fit(split, seed=0, progress=False)
    rising = itertools.count(1)
    monkeypatch.setattr(NARM, "_recall", lambda self, cases: next(rising))
    longer = NARM(**params).fit(split, seed=0, progress=False)
    test_recall = [evaluate(r, split.test, progress=False).metrics["mrr@20"] for r in (chosen, longer)]
    assert test_recall[1] > test_recall[0]  # peeking at the test set would have taken 5 epochs
    assert chosen.selection_["epochs"] == 1 and len(chosen.history_) == 1 and longer.selection_["epochs"] == 5


def test_refit_false_reports_the_best_epoch_of_the_hold_out_run(monkeypatch):
    split = oracle_split(n_train=200)
    calls = _record_training(monkeypatch)
    curve = iter([0.10, 0.30, 0.25, 0.20, 0.15])
    monkeypatch.setattr(NARM, "_recall", lambda self, cases: next(curve))
    rec = NARM(**TINY, refit=False).fit(split, seed=0, progress=False)
    assert len(calls) == 1 and rec.selection_ is None and rec.fit_report_ is None
    assert [h.validation for h in rec.history_] == [0.10, 0.30, 0.25, 0.20, 0.15]


def test_selected_epochs_is_the_first_best_and_needs_validation():
    logs = [EpochLog(i, 1.0, 0.5, v) for i, v in enumerate([0.2, 0.4, 0.4, 0.1])]
    assert selected_epochs(logs) == 2
    assert selection_record(logs, "recall@20", "x")["curve"] == [0.2, 0.4, 0.4, 0.1]
    with pytest.raises(ValueError, match="validation score"):
        selected_epochs([EpochLog(0, 1.0, 0.5, None)])


def test_an_interrupted_refit_resumes_from_its_own_checkpoint(tmp_path, monkeypatch):
    split = oracle_split(n_train=200)
    rising = itertools.count(1)  # the validation score rises every epoch: 3 epochs are selected
    monkeypatch.setattr(NARM, "_recall", lambda self, cases: next(rising) / 100)
    params = {**TINY, "epochs": 3}
    whole = NARM(**params).fit(split, seed=2, progress=False)
    calls = _record_training(monkeypatch)
    step, refit_steps = NARM._step, []
    per_epoch = int(np.ceil(split.train.n_prefixes / 64))

    def interrupt_in_refit_epoch_2(self, *args):
        if len(calls) == 2:
            refit_steps.append(1)
            if len(refit_steps) == per_epoch + 2:
                raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(NARM, "_step", interrupt_in_refit_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        NARM(**params).fit(split, seed=2, progress=False, checkpoint=tmp_path / "narm.pt")
    monkeypatch.setattr(NARM, "_step", step)
    assert (tmp_path / "narm.pt").is_file() and phase_checkpoint(tmp_path / "narm.pt", "refit").is_file()
    resumed = NARM(**params).fit(split, seed=2, progress=False, checkpoint=tmp_path / "narm.pt")
    assert resumed.resumed_["epochs"] == 3 + 1  # the whole selection run and the refit's first epoch
    assert whole.selection_["epochs"] == resumed.selection_["epochs"] == 3
    assert [h.loss for h in resumed.history_] == [h.loss for h in whole.history_]
    batch = next(split.test.prefix_batches(64))
    np.testing.assert_array_equal(resumed.score(batch).numpy(), whole.score(batch).numpy())
