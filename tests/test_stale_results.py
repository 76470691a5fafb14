"""Issue 20, class 1: stale results are never shown as fresh (a result's identity: split fingerprint,
method, settings, seed, code), and load_results reads them back."""

import hashlib
import json
import logging
import os

from integrity_plugins import clicks_csv, run

import sessionbench.provenance as provenance
import sessionbench.store as store
from sessionbench.cli import main
from sessionbench.data import load_dataset
from sessionbench.runs import load_runs

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
    impostor = run(tmp_path, "integrity_plugins:Impostor")
    assert (builtin.status, impostor.status) == ("ran", "ran") and builtin.path != impostor.path
    runs = load_runs(builtin.path.parent)
    assert len(runs.groups) == 2
    assert main(["--methods", "pop", "--recommender", "integrity_plugins:Impostor", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "| pop [baselines.pop:Pop] " in page and "| pop [integrity_plugins:Impostor] " in page


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
    assert main(["--quick", "--methods", "integrity_plugins:Scores", "--results-dir", str(shared), "--no-progress"]) == 0
    quick_only = (shared / "synthetic.md").read_text()
    assert "**Smoke runs (--quick)**" in quick_only and "| scores " in quick_only
    assert main(["--methods", "integrity_plugins:Scores", "--results-dir", str(shared), "--no-progress"]) == 0
    page = (shared / "synthetic.md").read_text()
    table3 = page.split("## Table 3")[1].split("\n## ")[0]
    assert table3.count("| scores ") == 1 and "## Smoke runs (--quick)" in page




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


