"""Issue 20: a result is what it says it is. Stale results are never shown as fresh, a model
never sees the answer, damage is named and recovered from, files go only where they belong,
and what ran is what is recorded."""

import errno
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sessionbench.provenance as provenance
import sessionbench.store as store
from sessionbench.cli import main
from sessionbench.data import load_dataset
from sessionbench.harness import Job, run_job, run_jobs
from sessionbench.recommender import Recommender
from sessionbench.runs import Group, load_runs
from sessionbench.testing import RecommenderContract
from sessionbench.training import Checkpoint, train_epochs


class Scores(Recommender):
    """Seeded random scores: the cheapest model that runs the whole harness."""

    name = "scores"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.n_items_, self.seed_ = split.n_items, seed
        return self

    def score(self, batch):
        rng = np.random.default_rng([self.seed_, *batch.items[:, 0].clip(0).tolist()[:4]])
        return self.scale * rng.random((len(batch), self.n_items_), dtype=np.float32)


class Impostor(Scores):
    """A plugin that reuses a built-in's name."""

    name = "pop"


class Peeker(Scores):
    """Reads the answer from the batch, where a model must not find it."""

    name = "peeker"

    def score(self, batch):
        scores = np.zeros((len(batch), self.n_items_), dtype=np.float32)
        scores[np.arange(len(batch)), batch.targets] = 1.0
        return scores


class NextRow(Scores):
    """Learns nothing, but reads each row's answer off a longer prefix of its session in the
    same batch, if the evaluator puts one there."""

    name = "next-row"

    def score(self, batch):
        scores = np.zeros((len(batch), self.n_items_), dtype=np.float32)
        for i in range(len(batch)):
            for j in range(len(batch)):
                n = batch.lengths[i]
                if batch.lengths[j] > n and np.array_equal(batch.items[j, :n], batch.items[i, :n]):
                    scores[i, batch.items[j, n]] = 1.0
        return scores


class Vandal(Recommender):
    """Popularity, but it writes over the batch it is given."""

    name = "vandal"

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.counts_ = np.bincount(split.train.items, minlength=split.n_items).astype(np.float32)
        return self

    def score(self, batch):
        scores = np.tile(self.counts_, (len(batch), 1))
        batch.items[:] = 0
        batch.lengths[:] = 1
        return scores


class Honest(Vandal):
    name = "honest"

    def score(self, batch):
        return np.tile(self.counts_, (len(batch), 1))


class Memoriser(Scores):
    """Looks at the test sessions in fit."""

    name = "memoriser"

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.test_sessions_seen_ = len(split.test)
        return super().fit(split, seed=seed)

    def score(self, batch):
        assert self.test_sessions_seen_ == 0, "fit saw the test sessions"
        return super().score(batch)


class Slow(Scores):
    name = "slow"

    def fit(self, split, *, seed, device="cpu", progress=True):
        time.sleep(1.0)
        return super().fit(split, seed=seed)


class Exits(Scores):
    name = "exits"

    def fit(self, split, *, seed, device="cpu", progress=True):
        sys.exit(3)


class Killed(Scores):
    name = "killed"

    def fit(self, split, *, seed, device="cpu", progress=True):
        os.kill(os.getpid(), signal.SIGKILL)


class Figure(Scores):
    name = "figure"

    def attention_figure(self, split, path):
        Path(path).write_bytes(b"\x89PNG\r\n")
        return path


def job(method="test_integrity:Scores", **kwargs):
    return Job(kwargs.pop("dataset", "synthetic"), method, **kwargs)


def run(tmp_path, method="test_integrity:Scores", force=False, **kwargs):
    return run_job(job(method, **kwargs), results_dir=tmp_path, progress=False, force=force)


def clicks_csv(path: Path, seed: int = 0, sessions: int = 400) -> Path:
    """A click file of ``sessions`` sessions over 20 days, 40 items."""
    rng = np.random.default_rng(seed)
    rows = ["session_id,item_id,timestamp"]
    for s in range(sessions):
        start = 1_460_000_000 + s * 4320
        for c in range(int(rng.integers(2, 6))):
            rows.append(f"{s},{int(rng.integers(0, 40))},{start + 60 * c}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


# 1. Stale results are never shown as fresh


def test_issue_20_another_synthetic_data_seed_is_run_not_reused(tmp_path):
    first = run(tmp_path, data_options={"seed": 0})
    other = run(tmp_path, data_options={"seed": 1})
    assert (first.status, other.status) == ("ran", "ran")
    assert first.path.parent != other.path.parent  # both splits' results coexist
    assert run(tmp_path, data_options={"seed": 0}).status == "reused"


def test_issue_20_two_same_named_csv_files_are_two_splits(tmp_path):
    a, b = clicks_csv(tmp_path / "a" / "clicks.csv", 0), clicks_csv(tmp_path / "b" / "clicks.csv", 1)
    results = tmp_path / "results"
    first = run(results, dataset=f"csv:{a}", data_options={"test_days": 2})
    second = run(results, dataset=f"csv:{b}", data_options={"test_days": 2})
    assert (first.status, second.status) == ("ran", "ran")
    assert first.result["metrics"] != second.result["metrics"]


def test_issue_20_splits_made_with_other_options_get_pages_of_their_own(tmp_path):
    data = clicks_csv(tmp_path / "clicks.csv")
    for option in ("test_days=2", "test_days=3"):
        args = ["--dataset", f"csv:{data}", "--data-option", option, "--methods", "pop", "--results-dir", str(tmp_path / "r"), "--no-progress"]
        assert main(args) == 0
    assert main(["--data-option", "seed=1", "--methods", "pop", "--results-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "r").glob("*.md")) == ["csv-clicks-test_days2.md", "csv-clicks-test_days3.md", "synthetic-seed1.md"]


def test_issue_20_an_edited_file_or_another_option_is_run_not_reused(tmp_path):
    data = clicks_csv(tmp_path / "clicks.csv", 0)
    results = tmp_path / "results"
    assert run(results, dataset=f"csv:{data}", data_options={"test_days": 2}).status == "ran"
    assert run(results, dataset=f"csv:{data}", data_options={"test_days": 3}).status == "ran"
    before = data.stat()
    text = data.read_text()
    data.write_text(text.replace(",7,", ",8,", 1))  # one click on another item: same size
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same modification time
    assert data.stat().st_size == before.st_size
    edited = run(results, dataset=f"csv:{data}", data_options={"test_days": 2})
    assert edited.status == "ran" and edited.result["dataset_info"]["files"][0]["sha256"] != hashlib.sha256(text.encode()).hexdigest()


def test_issue_20_a_cache_entry_of_another_split_is_not_used(tmp_path, caplog):
    first = load_dataset("synthetic", cache_dir=tmp_path)
    other = load_dataset("synthetic", cache_dir=tmp_path, seed=1)
    (entry_0,) = [p for p in tmp_path.glob("*.npz") if p.stat().st_mtime_ns <= min(q.stat().st_mtime_ns for q in tmp_path.glob("*.npz"))]
    (entry_1,) = [p for p in tmp_path.glob("*.npz") if p != entry_0]
    entry_0.write_bytes(entry_1.read_bytes())  # a valid entry, but of the seed-1 split
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    assert again.fingerprint == first.fingerprint != other.fingerprint and "another split's entry" in caplog.text


def test_issue_20_changed_code_is_run_again_and_the_log_says_why(tmp_path, monkeypatch, caplog):
    first = run(tmp_path)
    monkeypatch.setattr(store, "code_identity", lambda: "0.1.0+edited")
    with caplog.at_level(logging.INFO, logger="sessionbench"):
        again = run(tmp_path)
    assert again.status == "ran" and again.path == first.path  # the slot is overwritten, not duplicated
    assert "not reusing" in caplog.text and "code" in caplog.text and "0.1.0+edited" in caplog.text
    assert json.loads(first.path.read_text())["identity"]["code"] == "0.1.0+edited"


def test_issue_20_a_plugin_named_like_a_built_in_is_not_shown_its_result(tmp_path):
    builtin = run(tmp_path, "pop")
    impostor = run(tmp_path, "test_integrity:Impostor")
    assert (builtin.status, impostor.status) == ("ran", "ran") and builtin.path != impostor.path
    runs = load_runs(builtin.path.parent)
    assert len(runs.groups) == 2
    assert main(["--methods", "pop", "--recommender", "test_integrity:Impostor", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "| pop [baselines.pop:Pop] " in page and "| pop [test_integrity:Impostor] " in page


def test_issue_20_a_result_from_a_dirty_tree_says_so_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_git_state", lambda root: ("0123456789ab", True))
    provenance.code_version.cache_clear()
    try:
        assert main(["--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    finally:
        provenance.code_version.cache_clear()
    page = (tmp_path / "synthetic.md").read_text()
    assert "commit 0123456789ab+changes" in page and "uncommitted changes" in page


def test_issue_20_the_code_version_is_the_checkouts_own(tmp_path):
    code = provenance.code_version()
    assert len(code["source"]) == 64 and code["sessionbench"]
    # a git repository around the packages that is not sessionbench's own names no commit
    assert provenance._git_state(tmp_path) == (None, None)


def test_issue_20_quick_runs_have_their_own_folder_and_are_listed_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--quick", "--methods", "pop", "--no-progress"]) == 0
    assert (tmp_path / "results-quick" / "synthetic.md").is_file() and not (tmp_path / "results").exists()
    shared = tmp_path / "shared"
    assert main(["--quick", "--methods", "test_integrity:Scores", "--results-dir", str(shared), "--no-progress"]) == 0
    quick_only = (shared / "synthetic.md").read_text()
    assert "**Smoke runs (--quick)**" in quick_only and "| scores " in quick_only
    assert main(["--methods", "test_integrity:Scores", "--results-dir", str(shared), "--no-progress"]) == 0
    page = (shared / "synthetic.md").read_text()
    table3 = page.split("## Table 3")[1].split("\n## ")[0]
    assert table3.count("| scores ") == 1 and "## Smoke runs (--quick)" in page


# 2. A model never sees the answer


def test_issue_20_a_model_that_reads_the_targets_cannot_score_them(tmp_path):
    outcome = run(tmp_path, "test_integrity:Peeker")
    assert outcome.status == "failed" or outcome.result["metrics"]["recall@20"] < 0.5


def test_issue_20_no_batch_holds_a_longer_prefix_of_a_session_beside_a_shorter_one(tmp_path):
    outcome = run(tmp_path, "test_integrity:NextRow")
    assert outcome.result["metrics"]["recall@20"] < 0.2  # it scored 0.74 when batches ran session by session


def test_issue_20_a_model_that_writes_into_its_batch_is_graded_as_if_it_had_not(tmp_path):
    vandal, honest = run(tmp_path, "test_integrity:Vandal"), run(tmp_path, "test_integrity:Honest")
    assert vandal.result["by_ties"] == honest.result["by_ties"]
    with np.load(vandal.path.with_suffix(".npz")) as a, np.load(honest.path.with_suffix(".npz")) as b:
        assert all(np.array_equal(a[k], b[k]) for k in ("greater", "equal", "prefix_lengths"))


def test_issue_20_fit_sees_no_test_session(tmp_path):
    outcome = run(tmp_path, "test_integrity:Memoriser")
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


# 4. Damage is named and recovered from


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_issue_20_a_truncated_result_is_set_aside_and_run_again(tmp_path, caplog, suffix):
    first = run(tmp_path)
    damaged = first.path.with_suffix(suffix)
    damaged.write_bytes(damaged.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = run(tmp_path)
    assert again.status == "ran" and str(damaged) in caplog.text and "set aside" in caplog.text
    assert damaged.with_name(damaged.name + ".damaged").is_file()  # kept, not deleted
    assert again.result["by_ties"] == first.result["by_ties"]


def test_issue_20_tables_only_names_a_damaged_result_and_renders_the_rest(tmp_path, caplog):
    args = ["--methods", "pop,spop", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    (bad,) = (tmp_path / "raw" / "synthetic").glob("*/spop-*.json")
    bad.write_text('{"method": "spop", "metr')
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        assert main([*args, "--tables-only"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "| pop " in page and "| spop " not in page and str(bad) in caplog.text


def test_issue_20_a_truncated_cache_file_is_set_aside_and_rebuilt(tmp_path, caplog):
    split = load_dataset("synthetic", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    assert again.fingerprint == split.fingerprint and str(entry) in caplog.text
    assert entry.with_name(entry.name + ".damaged").is_file() and entry.is_file()


def test_issue_20_a_cache_file_with_flipped_bytes_is_not_used(tmp_path, caplog):
    split = load_dataset("synthetic", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    data = bytearray(entry.read_bytes())
    with np.load(entry) as z:
        items = z["train.items"]
    position = bytes(data).find(items[:64].tobytes())  # inside the uncompressed item array
    data[position + 8] ^= 0x01
    entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    assert "is damaged" in caplog.text and again.fingerprint == split.fingerprint


def test_issue_20_a_checkpoint_with_flipped_bytes_is_named_and_training_starts_afresh(tmp_path, caplog):
    path = tmp_path / "t.pt"
    rng = np.random.default_rng(0)
    saved = Checkpoint(path, {"run": 1}, {"rng": rng})
    train_epochs(lambda epoch: float(rng.random()), epochs=2, progress=False, checkpoint=saved)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    again = Checkpoint(path, {"run": 1}, {"rng": np.random.default_rng(0)})
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        train_epochs(lambda epoch: 0.5, epochs=2, progress=False, checkpoint=again)
    assert again.resumed_epochs == 0 and str(path) in caplog.text and "damaged or truncated" in caplog.text


def test_issue_20_a_full_disk_while_checkpointing_costs_only_the_resume(tmp_path, monkeypatch, caplog):
    import sessionbench.training as training

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "atomic_write", full)
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        history = train_epochs(lambda epoch: 1.0, epochs=2, progress=False, checkpoint=Checkpoint(tmp_path / "t.pt", {}))
    assert len(history) == 2 and "could not write the checkpoint" in caplog.text and "No space left" in caplog.text


def test_issue_20_two_identical_runs_at_once_both_end_well_with_one_result(tmp_path):
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(run(tmp_path, "test_integrity:Slow"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.status for o in outcomes) == ["ran", "reused"]
    files = sorted(p.name for p in outcomes[0].path.parent.iterdir())
    assert len([f for f in files if f.endswith(".json")]) == 1 and not [f for f in files if "tmp" in f]


def test_issue_20_a_job_calling_sys_exit_is_recorded_as_failed_and_the_others_run(tmp_path):
    outcomes = run_jobs([job("test_integrity:Exits"), job()], results_dir=tmp_path, progress=False)
    assert [o.status for o in outcomes] == ["failed", "ran"] and "SystemExit: 3" in outcomes[0].error


def test_issue_20_a_killed_worker_costs_only_its_own_job(tmp_path):
    jobs = [job("test_integrity:Killed"), job(), job("pop")]
    outcomes = run_jobs(jobs, results_dir=tmp_path, progress=False, n_jobs=2)
    assert [o.status for o in outcomes] == ["failed", "ran", "ran"]
    assert "SIGKILL" in outcomes[0].error
    (failure,) = (tmp_path / "raw" / "synthetic").glob("*/killed-*.failed.json")
    assert "SIGKILL" in json.loads(failure.read_text())["error"]


# 5. Files go only where they belong


def test_issue_20_a_data_option_cannot_move_the_page_out_of_the_results(tmp_path, capsys):
    results = tmp_path / "a" / "b" / "results"
    assert main(["--tables-only", "--data-option", "size=/../../../x", "--results-dir", str(results)]) == 2
    assert "option size must be one of" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".md"] == []


def test_issue_20_a_result_cannot_point_the_page_at_another_file(tmp_path):
    outcome = run(tmp_path, "test_integrity:Figure")
    group = Group("figure", "", None, [outcome.result], outcome.path.parent)
    assert group.attention_figure == outcome.result["attention_figure"]
    for evil in ("/etc/passwd", "../../../secret.png", "..png"):
        assert Group("figure", "", None, [{**outcome.result, "attention_figure": evil}], outcome.path.parent).attention_figure is None


def test_issue_20_names_are_escaped_on_the_page_and_in_file_names(tmp_path):
    class Evil(Scores):
        name = "ev|il\nname/../x"

    sys.modules[__name__].Evil = Evil
    Evil.__qualname__ = "Evil"
    try:
        outcome = run(tmp_path, "test_integrity:Evil")
        assert outcome.status == "ran" and outcome.path.resolve().is_relative_to(tmp_path.resolve())
        assert "/" not in outcome.path.name and "\n" not in outcome.path.name
        assert main(["--methods", "pop", "--recommender", "test_integrity:Evil", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    finally:
        del sys.modules[__name__].Evil
    table3 = (tmp_path / "synthetic.md").read_text().split("## Table 3")[1].split("\n\n")[1]
    rows = table3.splitlines()
    assert len({row.replace("\\|", "").count("|") for row in rows}) == 1  # every row has the header's columns
    assert any(row.startswith("| ev\\|il name/../x ") for row in rows)


# 6. What ran is what is recorded


def test_issue_20_a_built_in_shadowed_by_a_local_folder_is_an_error_naming_it(tmp_path, monkeypatch, capsys):
    import importlib
    import importlib.machinery
    import types

    # what `import baselines` finds when a folder of that name comes first on sys.path
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    fake = types.ModuleType("baselines")
    fake.__path__ = [str(folder)]
    fake.__spec__ = importlib.machinery.ModuleSpec("baselines", None, origin=str(folder / "__init__.py"), is_package=True)
    monkeypatch.setitem(sys.modules, "baselines", fake)
    real_import = importlib.import_module

    def shadowed_import(name, package=None):  # an editable install's finder would bypass the folder
        if name.startswith("baselines."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", shadowed_import)
    assert main(["--no-progress", "--results-dir", str(tmp_path / "results")]) == 2  # the default methods: no silent skip
    err = capsys.readouterr().err
    assert "shadows sessionbench's own" in err and str(folder) in err


def test_issue_20_pages_name_no_path_of_the_machine(tmp_path):
    data = clicks_csv(tmp_path / "data" / "clicks.csv")
    results = tmp_path / "results"
    args = ["--dataset", f"csv:{data}", "--data-option", "test_days=2", "--methods", "pop", "--results-dir", str(results), "--no-progress"]
    assert main(args) == 0
    page = (results / "csv-clicks-test_days2.md").read_text()
    assert str(tmp_path) not in page and "clicks.csv (" in page and "sha256 `" in page
    result = json.loads(next(results.glob("raw/csv-clicks-test_days2/*/pop-*.json")).read_text())
    assert str(tmp_path) not in json.dumps(result["dataset_info"])


def test_issue_20_attention_figure_into_a_directory_is_refused_before_training(tmp_path, capsys):
    assert main(["--methods", "pop", "--attention-figure", str(tmp_path), "--results-dir", str(tmp_path / "r")]) == 2
    assert "is a directory" in capsys.readouterr().err and not (tmp_path / "r" / "raw").exists()


@pytest.mark.filterwarnings("ignore::sessionbench.errors.DataWarning")
def test_issue_20_a_data_warning_is_on_the_page(tmp_path):
    data = clicks_csv(tmp_path / "clicks.csv")
    results = tmp_path / "results"
    args = ["--dataset", f"csv:{data}", "--data-option", "test_days=0.05", "--methods", "pop", "--results-dir", str(results), "--no-progress"]
    assert main(args) == 0
    page = (results / "csv-clicks-test_days0.05.md").read_text()
    assert "**Data warning**: " in page and "the test set has" in page


def test_issue_20_a_flipped_digit_in_a_result_json_is_caught(tmp_path, caplog):
    first = run(tmp_path)
    result = json.loads(first.path.read_text())
    result["by_ties"]["conservative"]["metrics"]["recall@20"] += 0.01
    first.path.write_text(json.dumps(result))
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = run(tmp_path)
    assert again.status == "ran" and "metrics are not those of its ranks file" in caplog.text


def test_issue_20_editing_a_plugins_helper_module_runs_it_again(tmp_path, monkeypatch):
    package = tmp_path / "plug" / "myplug"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from myplug.model import Model\n")
    (package / "helpers.py").write_text("SCALE = 1.0\n")
    (package / "model.py").write_text(
        "import numpy as np\nfrom sessionbench import Recommender\nfrom myplug import helpers\n\n"
        "class Model(Recommender):\n    name = 'myplug'\n\n"
        "    def fit(self, split, *, seed, device='cpu', progress=True):\n        self.n_ = split.n_items\n        return self\n\n"
        "    def score(self, batch):\n        return np.full((len(batch), self.n_), helpers.SCALE, dtype=np.float32)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plug"))
    results = tmp_path / "results"
    assert run(results, "myplug:Model").status == "ran"
    assert run(results, "myplug:Model").status == "reused"
    (package / "helpers.py").write_text("SCALE = 2.0\n")
    assert run(results, "myplug:Model").status == "ran"


def test_issue_20_tables_only_for_other_data_refuses_to_overwrite_the_page(tmp_path, capsys):
    args = ["--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    page = (tmp_path / "synthetic.md").read_text()
    load_dataset("synthetic", seed=0)  # the split at hand is cached
    import sessionbench.cli as cli

    original = cli.cached_fingerprint
    try:
        cli.cached_fingerprint = lambda *a, **k: "0" * 64  # data at hand that is another split
        assert main([*args, "--tables-only"]) == 2
    finally:
        cli.cached_fingerprint = original
    assert "no results of the synthetic split at hand" in capsys.readouterr().err
    assert (tmp_path / "synthetic.md").read_text() == page


def test_load_results_gives_one_row_per_run_with_the_named_columns(tmp_path):
    import sessionbench

    assert main(["--methods", "pop,spop", "--seeds", "0,1", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    frame = sessionbench.load_results(tmp_path)
    assert len(frame) == 4 and set(frame["method"]) == {"pop", "spop"} and set(frame["seed"]) == {0, 1}
    for column in ("dataset", "settings", "conservative/recall@20", "standard/mrr@20", "median/recall@5", "fit_seconds", "code", "device"):
        assert column in frame.columns
    pop = frame[(frame["method"] == "pop") & (frame["seed"] == 0)].iloc[0]
    stored = json.loads(next(tmp_path.glob("raw/synthetic/*/pop-*-seed0.json")).read_text())
    assert pop["conservative/recall@20"] == stored["by_ties"]["conservative"]["metrics"]["recall@20"]
    assert sessionbench.load_results(tmp_path, "no-such-split").empty


def test_a_page_without_narm_says_why_table_5_is_absent(tmp_path):
    assert main(["--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "## Table 5" in page and "this page has no run of NARM" in page
