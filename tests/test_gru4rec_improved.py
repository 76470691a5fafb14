"""Improved GRU4Rec (Tan et al., DLRS 2016): prefix training with click dropout, full softmax,
truncation to the last 19 clicks, pre-training on the whole data, and learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.gru4rec import UNSEEN_SCORE
from baselines.gru4rec_improved import ImprovedGRU4Rec, ImprovedGRU4RecNet
from sessionbench.data import Sessions, load_dataset
from sessionbench.evaluation import evaluate
from sessionbench.recommender import PrefixBatch
from sessionbench.testing import RecommenderContract, abc_split, interrupt_training


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> ImprovedGRU4Rec:
    params = {"embedding_size": 16, "hidden_size": 32, "batch_size": 32, "epochs": 3, "learning_rate": 0.01}
    return ImprovedGRU4Rec(**{**params, **overrides})


def prefix_batch(*prefixes: list[int]) -> PrefixBatch:
    return PrefixBatch.from_lists(list(prefixes))


def test_learns_a_deterministic_sequence():
    split = abc_split()
    result = evaluate(tiny().fit(split, seed=0, progress=False), split.test, progress=False)
    assert result.metrics["recall@20"] == 1.0


def test_trains_on_every_prefix_with_clicks_dropped_at_the_given_rate(monkeypatch):
    seen = []
    original = ImprovedGRU4RecNet.last_state

    def spy(self, items, lengths):
        if self.training:
            seen.append((items.clone(), lengths.clone()))
        return original(self, items, lengths)

    monkeypatch.setattr(ImprovedGRU4RecNet, "last_state", spy)
    split = abc_split()
    tiny(epochs=1, click_dropout=0.3).fit(split, seed=0, progress=False)
    lengths = torch.cat([length for _, length in seen])
    # every prefix of every training session, once per epoch
    assert len(lengths) == split.train.n_prefixes
    np.testing.assert_array_equal(np.sort(lengths.numpy()), np.sort(split.train.prefix_lengths()))
    real = torch.cat([(torch.arange(i.shape[1])[None, :] < n[:, None]).flatten() for i, n in seen])
    dropped = torch.cat([(i == 0).flatten() for i, _ in seen])[real]
    assert abs(dropped.float().mean().item() - 0.3) < 0.03


def test_prefixes_are_truncated_to_their_last_clicks():
    rec = tiny(epochs=1).fit(abc_split(), seed=0, progress=False)
    long = list(range(3, 28))  # 25 clicks
    scores = rec.score(prefix_batch(long, long[-19:], long[-18:]))
    torch.testing.assert_close(scores[0], scores[1])
    assert not torch.allclose(scores[1], scores[2])


def test_items_without_training_data_score_lowest():
    split = abc_split()
    split.n_items, split.item_ids = 65, np.arange(65)
    rec = tiny(epochs=1).fit(split, seed=0, progress=False)
    scores = rec.score(prefix_batch([0, 1], [62, 0, 1]))
    assert (scores[:, 60:] == UNSEEN_SCORE).all() and (scores[:, :60] > UNSEEN_SCORE).all()


def epoch_spy(monkeypatch) -> list:
    """The sessions of every epoch the next fits run, in order (pre-training first)."""
    phases = []
    original = ImprovedGRU4Rec._run_epoch

    def spy(self, sessions, *args):
        phases.append(sessions)
        return original(self, sessions, *args)

    monkeypatch.setattr(ImprovedGRU4Rec, "_run_epoch", spy)
    return phases


@pytest.mark.parametrize("older", [True, False])
def test_pretrains_on_the_whole_data_only_when_the_split_has_it(monkeypatch, older):
    phases = epoch_spy(monkeypatch)
    split = abc_split()
    split.n_items, split.item_ids = 62, np.arange(62)
    if older:  # a YOOCHOOSE-style fraction: the whole data has older sessions (and item 61)
        split.full_train = Sessions.from_lists([[61, 0, 1]] * 5 + split.train.to_lists())
    rec = tiny(epochs=2, pretrain_epochs=1).fit(split, seed=0, progress=False)
    assert phases == ([split.full_train] if older else []) + [split.train, split.train]
    # an item seen only in the older data is scored like a trained item
    assert bool(rec.score(prefix_batch([0]))[0, 61] > UNSEEN_SCORE) == older


@pytest.mark.parametrize("after_epochs", [1, 2], ids=["after-pretraining", "in-training"])
def test_an_interrupted_fit_resumes_across_the_two_phases(tmp_path, monkeypatch, after_epochs):
    split = abc_split()
    split.full_train = Sessions.from_lists([[2, 0, 1]] * 5 + split.train.to_lists())
    whole = tiny(epochs=2, pretrain_epochs=1).fit(split, seed=0, progress=False)
    path = tmp_path / "training.pt"
    interrupt_training(monkeypatch, after_epochs)
    with pytest.raises(KeyboardInterrupt):
        tiny(epochs=2, pretrain_epochs=1).fit(split, seed=0, progress=False, checkpoint=path)
    resumed = tiny(epochs=2, pretrain_epochs=1).fit(split, seed=0, progress=False, checkpoint=path)
    assert resumed.resumed_["epochs"] == after_epochs
    assert resumed.fit_report_ == whole.fit_report_ and resumed.fit_report_["pretrain"].startswith("on the full")
    batch = prefix_batch([0], [0, 1], [2, 0])
    np.testing.assert_array_equal(resumed.score(batch), whole.score(batch))



def preprocessed_fraction(tmp_path):
    """YOOCHOOSE 1/64 as the NARM/SR-GNN preprocessed files hold it: the fraction alone."""
    rng = np.random.default_rng(0)
    train = ["1 2 3"] * 100 + [" ".join(map(str, rng.integers(4, 30, 4))) for _ in range(200)]
    (tmp_path / "train_sessions.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test_sessions.txt").write_text("1 2 3\n" * 40)
    return load_dataset("yoochoose-1-64", tmp_path, cache=False)


def test_pretrain_true_refuses_a_fraction_without_its_full_training_data(tmp_path):
    split = preprocessed_fraction(tmp_path)
    assert split.full_train is None
    with pytest.raises(ValueError, match=r"pretrain=True needs the full training data of 'yoochoose-1-64'.*"
                       r"train_sessions.txt \+ test_sessions.txt holds no older sessions.*yoochoose-clicks.dat.*"
                       r"--set gru4rec-improved\.pretrain=if-available.*--set gru4rec-improved\.pretrain=false"):
        tiny(epochs=1, pretrain_epochs=1).fit(split, seed=0, progress=False)


def test_pretrain_if_available_trains_on_the_fraction_alone_and_says_so(tmp_path, monkeypatch):
    phases = epoch_spy(monkeypatch)
    split = preprocessed_fraction(tmp_path)
    rec = tiny(epochs=1, pretrain_epochs=1, pretrain="if-available").fit(split, seed=0, progress=False)
    assert phases == [split.train]
    assert rec.fit_report_ == {
        "pretrain": "skipped: the split has no full training set (train_sessions.txt + test_sessions.txt holds only "
        "the fraction); pretrain='if-available' allowed this"
    }


FULL = "on the full training data (205 sessions)"


@pytest.mark.parametrize(
    "pretrain, older, epochs, report",
    [
        (True, True, 1, f"{FULL} for 1 epoch before fine-tuning on the recent fraction (600 sessions)"),
        ("if-available", True, 2, f"{FULL} for 2 epochs before fine-tuning on the recent fraction (600 sessions)"),
        (True, False, 1, "not applicable: the training data of 'abc' is not a recent fraction of older data"),
        ("if-available", False, 1, "not applicable: the training data of 'abc' is not a recent fraction of older data"),
        (False, True, 1, "off (pretrain=False)"),
        (True, True, 0, "off (pretrain_epochs=0)"),
    ],
)
def test_fit_report_records_the_pretraining_done(pretrain, older, epochs, report):
    split = abc_split()
    if older:
        split.full_train = Sessions.from_lists([[2, 0, 1]] * 5 + split.train.to_lists()[:200])
    rec = tiny(epochs=1, pretrain=pretrain, pretrain_epochs=epochs).fit(split, seed=0, progress=False)
    assert rec.fit_report_ == {"pretrain": report}
    assert len(rec.history_) == 1 + (epochs if older and pretrain else 0)


def test_fit_report_names_the_fraction_of_a_split_made_from_raw_clicks():
    split = load_dataset("synthetic", fraction=4)
    rec = tiny(epochs=1, pretrain_epochs=1)
    rec._run_epoch = lambda *args: 0.0  # the report, not the training, is under test
    report = rec.fit(split, seed=0, progress=False).fit_report_["pretrain"]
    assert report == (
        f"on the full training data ({len(split.full_train):,} sessions) for 1 epoch before fine-tuning on the "
        f"1/4 fraction ({len(split.train):,} sessions)"
    )


def test_each_fit_sets_a_fresh_fit_report():
    split = abc_split()
    rec = tiny(epochs=1)
    first = rec.fit(split, seed=0, progress=False).fit_report_
    first["extra"] = "changed by the caller"
    assert rec.fit(split, seed=0, progress=False).fit_report_ == {"pretrain": first["pretrain"]}


def test_pretrain_if_available_round_trips_and_a_bad_value_lists_the_valid_ones():
    rec = tiny(pretrain="if-available")
    assert type(rec)(**rec.get_params()).get_params() == rec.get_params()
    with pytest.raises(ValueError, match=r"pretrain must be one of True, False, if-available, got 'yes'"):
        tiny(pretrain="yes")


def test_beats_itemknn_on_the_small_synthetic_data():
    from baselines.itemknn import ItemKNN

    split = load_dataset("synthetic", size="small")
    knn = evaluate(ItemKNN().fit(split, seed=0, progress=False), split.test, n_items=split.n_items, progress=False)
    # 128-prefix batches and a higher rate: the small data gives 512-batches too few updates
    rec = ImprovedGRU4Rec(embedding_size=64, hidden_size=64, batch_size=128, learning_rate=0.003, epochs=3)
    ours = evaluate(rec.fit(split, seed=0, progress=False), split.test, n_items=split.n_items, progress=False)
    assert ours.metrics["recall@20"] > knn.metrics["recall@20"]
    assert ours.metrics["mrr@20"] > knn.metrics["mrr@20"]


def test_fixed_seed_gives_identical_metrics_twice():
    split = abc_split(seed=3)
    split.test = split.train.select(np.arange(0, 600, 7))
    fits = [tiny(epochs=1).fit(split, seed=5, progress=False) for _ in range(2)]
    runs = [evaluate(rec, split.test, progress=False) for rec in fits]
    assert runs[0].metrics == runs[1].metrics
    np.testing.assert_array_equal(runs[0].greater, runs[1].greater)


@pytest.mark.parametrize(
    "bad", [dict(click_dropout=1.0), dict(max_length=0), dict(learning_rate=0), dict(hidden_size=0)]
)
def test_invalid_hyperparameters_name_the_parameter(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ImprovedGRU4Rec(**bad)


class TestImprovedGRU4RecContract(RecommenderContract):
    def make(self):
        return tiny(epochs=2)
