"""Equal-budget tuning: the validation split, seeded and resumable TPE trials, the params files,
and ``--tune`` / ``--params tuned`` through the command line."""

import hashlib
import json
import logging
from typing import ClassVar

import numpy as np
import pytest

from sessionbench.data import Sessions, Split, load_dataset
from sessionbench.experiment import arguments
from sessionbench.recommender import Recommender
from sessionbench.runs import Group, label_groups, load_runs
from sessionbench.search_space import Choice, Float
from sessionbench.tuned import ParamsFileError, check_params_file, params_path, read_params_file, write_params_file
from sessionbench.tuning import TuningError, tune, validation_sample, validation_split


def _has_optuna() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


needs_optuna = pytest.mark.skipif(not _has_optuna(), reason="optuna is not installed (pip install -e '.[tune]')")


class Boosted(Recommender):
    """Popularity plus ``boost`` for the last click's item; refuses ``boost`` above ``limit``
    (a bad combination, which a tuning must count as a failed trial, not crash on)."""

    name = "boosted"
    search_space: ClassVar[dict] = {"boost": Float(0.0, 2.0), "decay": Float(0.0, 1.0)}

    def __init__(self, boost: float = 1.0, decay: float = 0.5, limit: float = 2.0):
        if boost > limit:
            raise ValueError(f"Boosted: boost must be <= limit ({limit}), got {boost}")
        self.boost, self.decay, self.limit = boost, decay, limit

    def fit(self, split, *, seed, device="cpu", progress=True):
        counts = np.bincount(split.train.items, minlength=split.n_items).astype(np.float32)
        self.popularity_ = counts / counts.max()
        return self

    def score(self, batch):
        scores = np.tile(self.popularity_, (len(batch), 1))
        scores[np.arange(len(batch)), batch.last_items] += self.boost * self.decay
        return scores


@pytest.fixture(scope="module")
def split():
    return load_dataset("synthetic")


def _trials(result):
    return [(t["params"], t["value"], t["state"]) for t in result.trials]


def test_the_validation_split_holds_the_most_recent_sessions_and_none_on_both_sides(split):
    valid = validation_split(split)
    assert valid.name == "synthetic-validation" and valid.full_train is None
    assert len(valid.train) + len(valid.test) == len(split.train)
    assert valid.test.times.min() >= valid.train.times.max()  # by time, the newest last
    assert not set(valid.train.ids) & set(valid.test.ids)  # whole sessions: none on both sides
    assert valid.test.to_lists() == [split.train[s].tolist() for s in range(len(valid.train), len(split.train))]
    share = valid.test.n_prefixes / split.train.n_prefixes
    assert 0.1 <= share < 0.1 + split.train.lengths.max() / split.train.n_prefixes
    assert valid.fingerprint not in (split.fingerprint, validation_split(split, 0.2).fingerprint)
    assert len(split.test) and valid.info["validation"]["fingerprint"] == split.fingerprint  # test sessions unused


def test_a_yoochoose_fraction_is_validated_on_the_fraction_without_the_full_data():
    train = Sessions.from_lists([[0, 1], [1, 2, 3], [2, 3], [3, 0, 1], [0, 2]])
    full = Sessions.from_lists([[0, 1]] * 9 + train.to_lists())
    fraction = Split("yoochoose-1-64", train, Sessions.from_lists([[1, 2]]), 4, np.arange(4), {}, full)
    valid = validation_split(fraction)
    assert valid.full_train is None and len(valid.train) + len(valid.test) == len(train)
    assert valid.test.to_lists() == [[0, 2]]


def test_the_sample_of_validation_cases_is_whole_sessions_fixed_by_seed_and_split(split):
    valid = validation_split(split).test
    one = validation_sample(valid, 500, seed=0, key="ab" * 32)
    assert one.to_lists() == validation_sample(valid, 500, seed=0, key="ab" * 32).to_lists()
    assert 500 <= one.n_prefixes < 500 + valid.lengths.max()
    assert np.all(np.diff(one.times) >= 0)  # kept in time order
    sessions = {i: s for i, s in zip(valid.ids.tolist(), valid.to_lists())}
    assert all(sessions[i] == s for i, s in zip(one.ids.tolist(), one.to_lists()))  # whole sessions
    assert one.ids.tolist() != validation_sample(valid, 500, seed=1, key="ab" * 32).ids.tolist()
    assert validation_sample(valid, None, seed=0, key="ab" * 32) is valid


@needs_optuna
def test_the_sample_is_the_same_for_two_methods(split):
    knn = tune(split, "itemknn", 2, max_cases=800, progress=False)
    boosted = tune(split, "test_tuning:Boosted", 2, max_cases=800, progress=False)
    assert knn.validation == boosted.validation
    assert 800 <= knn.validation["cases"] < knn.validation["cases_in_all"]


@needs_optuna
def test_tuning_with_a_fixed_seed_and_budget_picks_the_same_setting_twice(split):
    first = tune(split, "itemknn", 6, seed=3, progress=False)
    again = tune(split, "itemknn", 6, seed=3, progress=False)
    assert first.params == again.params and _trials(first) == _trials(again)
    assert first.best_value == max(t["value"] for t in first.trials)
    assert set(first.space) == {"n_neighbors", "lmbd", "alpha"} and first.params["counting"] == "events"
    other = tune(split, "itemknn", 6, seed=4, progress=False)
    assert _trials(other) != _trials(first)  # the seed is what fixes them


@needs_optuna
def test_an_interrupted_tuning_resumes_trial_for_trial(split, tmp_path):
    journal = tmp_path / "journal" / "itemknn.jsonl"
    tune(split, "itemknn", 3, journal=journal, progress=False)
    with open(journal, "a") as f:
        f.write('{"number": 3, "par')  # a line cut short by the interruption
    resumed = tune(split, "itemknn", 6, journal=journal, progress=False)
    fresh = tune(split, "itemknn", 6, progress=False)
    assert resumed.resumed == 3 and _trials(resumed) == _trials(fresh) and resumed.params == fresh.params
    assert len(journal.read_text().splitlines()) == 1 + 6
    other = tune(split, "itemknn", 2, metric="recall@20", journal=journal, progress=False)  # another setup: afresh
    assert other.resumed == 0 and len(journal.read_text().splitlines()) == 1 + 2


@needs_optuna
def test_a_refused_combination_is_a_failed_trial_within_the_budget(split):
    result = tune(split, "test_tuning:Boosted", 8, fixed={"limit": 1.0}, progress=False)
    failed = [t for t in result.trials if t["state"] == "failed"]
    assert result.n_trials == 8 and result.n_failed == len(failed) > 0
    assert all("boost must be <= limit" in t["error"] for t in failed)
    assert result.params["boost"] <= 1.0 and result.params["limit"] == 1.0 and "limit" not in result.space
    with pytest.raises(TuningError, match="all 2 trials failed"):
        tune(split, "test_tuning:Boosted", 2, fixed={"limit": -1.0}, progress=False)
    with pytest.raises(TuningError, match="declares no search_space"):
        tune(split, "pop", 2, progress=False)


@needs_optuna
def test_a_params_file_round_trips(split, tmp_path):
    result = tune(split, "itemknn", 3, max_cases=1000, progress=False)
    path = tmp_path / "params" / "synthetic" / "itemknn.json"
    write_params_file(path, result)
    back = read_params_file(path)
    assert back == result and back.trials == []  # the trial list stays in the journal
    assert json.loads(path.read_text())["split"]["fingerprint"] == split.fingerprint
    write_params_file(path, back)
    assert read_params_file(path) == result


@needs_optuna
def test_a_damaged_or_foreign_params_file_is_refused_by_name(split, tmp_path):
    from baselines.itemknn import ItemKNN

    path = tmp_path / "itemknn.json"
    write_params_file(path, tune(split, "itemknn", 2, progress=False))
    data = json.loads(path.read_text())
    for damage, message in (("{", "not JSON"), (json.dumps({**data, "n_trials": "2"}), "n_trials must be int"),
                            (json.dumps({k: v for k, v in data.items() if k != "params"}), "it lacks params")):
        path.write_text(damage)
        with pytest.raises(ParamsFileError, match=message) as e:
            read_params_file(path)
        assert str(path) in str(e.value)
    path.write_text(json.dumps({**data, "split": {"name": "synthetic", "fingerprint": "0123456789ab" + "0" * 52}}))
    with pytest.raises(ParamsFileError) as e:
        check_params_file(read_params_file(path), path, split=split, cls=ItemKNN)
    assert str(path) in str(e.value) and "0123456789ab" in str(e.value) and split.fingerprint[:12] in str(e.value)


def _main(*args):
    from sessionbench.cli import main

    return main([*args, "--no-progress"])


@needs_optuna
def test_tune_writes_the_file_runs_it_and_reuses_it(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sessionbench")
    assert _main("--methods", "pop,itemknn", "--tune", "3", "--tune-cases", "1000", "--results-dir", str(tmp_path)) == 0
    assert "pop: not tuned, it declares no search space; running its defaults" in caplog.text
    path = tmp_path / "params" / "synthetic" / "itemknn.json"
    tuned = read_params_file(path)
    assert tuned.n_trials == 3 and tuned.validation["max_cases"] == 1000 and tuned.metric == "mrr@20"
    (result,) = tmp_path.glob("raw/synthetic/*/itemknn-*.json")
    run = json.loads(result.read_text())
    assert run["params"] == tuned.params
    assert run["tuning"]["file"] == "params/synthetic/itemknn.json"
    assert run["tuning"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and run["tuning"]["n_trials"] == 3
    caplog.clear()
    assert _main("--methods", "itemknn", "--tune", "3", "--tune-cases", "1000", "--results-dir", str(tmp_path)) == 0
    assert "reusing the tuned setting" in caplog.text and read_params_file(path).date == tuned.date
    caplog.clear()
    assert _main("--methods", "itemknn", "--tune", "3", "--tune-cases", "1000", "--tune-metric", "recall@20", "--results-dir", str(tmp_path)) == 0
    assert "because metric 'mrr@20' there, 'recall@20' now" in caplog.text and read_params_file(path).metric == "recall@20"


@needs_optuna
def test_params_tuned_uses_the_file_and_the_page_says_tuned(split, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sessionbench")
    path = params_path(tmp_path, "synthetic", "itemknn")
    write_params_file(path, tune(split, "itemknn", 4, max_cases=1000, progress=False))
    tuned = read_params_file(path)
    assert _main("--methods", "pop,itemknn", "--params", "tuned", "--results-dir", str(tmp_path)) == 0
    assert "pop: it declares no search space; running its defaults" in caplog.text
    assert f"itemknn: using the tuned setting of {path}" in caplog.text
    runs = load_runs(next((tmp_path / "raw" / "synthetic").iterdir()))
    labels = {g.method: label_groups(runs.groups)[id(g)] for g in runs.groups}
    assert labels == {"pop": "pop", "itemknn": "itemknn (tuned, 4 trials)"}
    knn = next(g for g in runs.groups if g.method == "itemknn")
    assert knn.runs[0]["params"] == tuned.params and knn.tuning["best_value"] == tuned.best_value
    assert "itemknn (tuned, 4 trials)" in (tmp_path / "synthetic.md").read_text()
    # the same hyperparameters given by --set are the same result (the record is not identity)
    sets = [arg for k in tuned.space for arg in ("--set", f"itemknn.{k}={json.dumps(tuned.params[k])}")]
    caplog.clear()
    assert _main("--methods", "itemknn", *sets, "--results-dir", str(tmp_path)) == 0
    assert "[reused] synthetic itemknn" in caplog.text
    assert all(r.get("tuning") is None for g in load_runs(knn.folder).groups for r in g.runs)


@needs_optuna
def test_a_file_of_another_split_or_setting_is_refused(split, tmp_path, capsys):
    path = params_path(tmp_path, "synthetic", "itemknn")
    write_params_file(path, tune(split, "itemknn", 2, max_cases=1000, progress=False))
    assert _main("--methods", "itemknn", "--params", "tuned", "--set", "itemknn.alpha=0.125", "--results-dir", str(tmp_path)) == 2
    assert "this run sets alpha=0.125 (--set)" in capsys.readouterr().err
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "split": {"name": "synthetic", "fingerprint": "fedcba987654" + "0" * 52}}))
    assert _main("--methods", "itemknn", "--params", "tuned", "--results-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("sessionbench: error: ") and str(path) in err
    assert "fedcba987654" in err and split.fingerprint[:12] in err
    assert not list(tmp_path.glob("raw/**/*.json"))  # refused before anything ran


def test_a_method_without_a_file_runs_its_defaults_and_says_so(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sessionbench")
    assert _main("--methods", "itemknn", "--params", "tuned", "--results-dir", str(tmp_path)) == 0
    assert "itemknn: no tuned setting at" in caplog.text and "running its defaults" in caplog.text
    (result,) = tmp_path.glob("raw/synthetic/*/itemknn-*.json")
    assert json.loads(result.read_text())["tuning"] is None


def test_tuning_options_are_checked_before_anything_runs(tmp_path, capsys):
    assert _main("--methods", "itemknn", "--tune", "0", "--results-dir", str(tmp_path)) == 2
    assert "--tune must be >= 1" in capsys.readouterr().err
    assert _main("--methods", "itemknn", "--tune", "2", "--params", "default", "--results-dir", str(tmp_path)) == 2
    assert "drop --params default" in capsys.readouterr().err


def test_the_label_of_tuned_groups(tmp_path):
    def group(settings, tuning):
        run = {"settings": settings, "tuning": tuning, "class": "baselines.itemknn:ItemKNN", "identity": {"code": "c"}}
        return Group("itemknn", json.dumps([settings, tuning]), "Item-KNN", [run], tmp_path)

    plain, one, two = group({"alpha": 0.3}, None), group({"alpha": 0.9}, {"n_trials": 50}), group({"alpha": 0.7}, {"n_trials": 50})
    labels = label_groups([plain, one, two])
    assert labels[id(plain)] == "itemknn (alpha=0.3)" and one.tuning == {"n_trials": 50} and plain.tuning is None
    assert labels[id(one)] == "itemknn (tuned, 50 trials) [alpha=0.9]" and labels[id(two)] == "itemknn (tuned, 50 trials) [alpha=0.7]"
    assert label_groups([one])[id(one)] == "itemknn (tuned, 50 trials)"


def test_an_experiment_file_can_ask_for_tuning(tmp_path):
    config = tmp_path / "experiment.toml"
    config.write_text('methods = ["itemknn"]\ntune = 20\ntune_metric = "recall@20"\ntune_cases = 0\n')
    (args,) = arguments(config)
    assert args[args.index("--tune") + 1] == "20" and args[args.index("--tune-metric") + 1] == "recall@20"
    assert args[args.index("--tune-cases") + 1] == "0"


class Swept(Boosted):
    """Boosted with suite settings, as NARM's Table 4 hidden sizes are."""

    name = "swept"
    suite_params: ClassVar[dict] = {"ablations": [{"boost": 0.5}, {"boost": 1.5}]}


def test_a_tuned_setting_is_the_methods_own_and_the_suite_settings_keep_the_defaults():
    from sessionbench.plan import Tuned, plan

    tuned = {"test_tuning:Swept": Tuned({"boost": 0.7, "decay": 0.9, "limit": 2.0}, {"n_trials": 5})}
    jobs = plan(["synthetic"], ["test_tuning:Swept"], [0], suite="paper", tuned=tuned)
    by_params = {json.dumps(j.params, sort_keys=True): (j.variant, j.tuning) for j in jobs}
    assert by_params == {  # the tuned one moved the swept boost, yet it is Table 3's row, not an ablation cell
        '{"boost": 0.7, "decay": 0.9}': (None, {"n_trials": 5}),
        '{"boost": 0.5}': ("ablations", None),
        '{"boost": 1.5}': ("ablations", None),
    }
    plain = plan(["synthetic"], ["test_tuning:Swept"], [0], suite="paper")
    assert sorted(json.dumps(j.params) for j in plain) == ['{"boost": 0.5}', '{"boost": 1.5}', "{}"]
    assert all(j.tuning is None for j in plain)


class Counted(Boosted):
    """Boosted on a two-point grid, counting its fits."""

    name = "counted"
    search_space: ClassVar[dict] = {"boost": Choice(0.0, 1.0)}
    fits: ClassVar[int] = 0

    def fit(self, split, *, seed, device="cpu", progress=True):
        Counted.fits += 1
        return super().fit(split, seed=seed, device=device, progress=progress)


@needs_optuna
def test_a_setting_proposed_again_is_not_fitted_again(split):
    Counted.fits = 0
    result = tune(split, Counted, 6, seed=0, max_cases=500, progress=False)
    settings = [json.dumps(t["params"], sort_keys=True) for t in result.trials]
    assert len(result.trials) == 6 and Counted.fits == len(set(settings)) <= 2  # six trials, at most two fits
    first = {}
    for trial, setting in zip(result.trials, settings):
        assert trial["value"] == first.setdefault(setting, trial["value"])
