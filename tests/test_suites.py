"""Suites, the ablation tables, significance, figures, and running jobs on a dask cluster."""

import json

import numpy as np
import pytest

from sessionbench.cli import main
from sessionbench.harness import plan
from sessionbench.recommender import Recommender


class Noisy(Recommender):
    """Popularity plus seeded noise: a stand-in with a controllable quality."""

    name = "noisy"
    paper_row = "Item-KNN"

    def __init__(self, noise: float = 1.0, hidden_size: int = 100):
        self.noise, self.hidden_size = noise, hidden_size

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.pop_ = np.bincount(split.train.items, minlength=split.n_items).astype(np.float32)
        self.pop_ /= self.pop_.max()
        self.rng_ = np.random.default_rng(seed)
        return self

    def score(self, batch):
        scores = self.pop_ + self.noise * self.rng_.random((len(batch), len(self.pop_)), dtype=np.float32)
        scores[np.arange(len(batch)), batch.last_items] += 0.5 / max(self.noise, 1e-3)
        return scores


class FakeNARM(Noisy):
    name = "fake-narm"
    paper_row = "NARM"
    suites = ("main", "ablations")
    suite_params = {"ablations": [{"hidden_size": 50}, {"hidden_size": 100}]}
    paper_tables = {"table2": "bi-linear", "table4": "hybrid"}

    def __init__(self, noise: float = 0.1, hidden_size: int = 100):
        super().__init__(noise, hidden_size)


def test_a_suite_plans_each_listed_setting():
    jobs = plan(["synthetic"], ["test_suites:FakeNARM", "pop"], [0, 1], {"test_suites:FakeNARM": {"noise": 0.2}}, suite="ablations")
    settings = sorted((j.method, j.params.get("hidden_size"), j.seed, j.variant) for j in jobs)
    assert settings == [
        ("pop", None, 0, None), ("pop", None, 1, None),
        ("test_suites:FakeNARM", 50, 0, "ablations"), ("test_suites:FakeNARM", 50, 1, "ablations"),
        ("test_suites:FakeNARM", 100, 0, None), ("test_suites:FakeNARM", 100, 1, None),  # = the defaults
    ]  # fmt: skip
    assert all(j.params["noise"] == 0.2 for j in jobs if j.method != "pop")


def test_a_swept_hyperparameter_set_by_hand_is_still_an_ablation_setting():
    fake = "test_suites:FakeNARM"
    for suite in ("ablations", "main"):
        jobs = plan(["synthetic"], [fake], [0], {fake: {"hidden_size": 50}}, suite=suite)
        assert [(j.params["hidden_size"], j.variant) for j in jobs] == [(50, "ablations")]  # Table 4, not Table 3
    jobs = plan(["synthetic"], [fake], [0], {fake: {"noise": 0.2, "hidden_size": 100}}, suite="main")
    assert [j.variant for j in jobs] == [None]  # other hyperparameters set by hand stay in Table 3


def test_main_suite_says_where_an_ablation_setting_is_rendered(tmp_path, caplog):
    fake = "test_suites:FakeNARM"
    assert main(["--methods", f"pop,{fake}", "--set", f"{fake}.hidden_size=50", "--results-dir", str(tmp_path)]) == 0
    assert f"{fake}: these settings are a cell of Tables 2 and 4" in caplog.text
    table3 = (tmp_path / "synthetic.md").read_text().split("## Table 3")[1]
    assert "| pop " in table3 and "fake-narm" not in table3


def test_paper_suite_renders_every_table_significance_and_figure_5(tmp_path):
    common = ["--results-dir", str(tmp_path), "--no-progress", "--seeds", "0,1"]
    methods = "pop,test_suites:Noisy,test_suites:FakeNARM"
    assert main(["--methods", methods, "--suite", "paper", *common]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    for title in ("## Table 1", "## Table 2", "## Table 3", "## Table 4", "## Table 5", "Figure 5"):
        assert title in page
    assert (tmp_path / "synthetic-figure5.png").read_bytes()[:4] == b"\x89PNG"
    table3 = page.split("## Table 3")[1].split("##")[0]
    noisy_row = next(line for line in table3.splitlines() if line.startswith("| noisy"))
    assert "<0.001 / <0.001" in noisy_row  # far worse than the stand-in NARM, on 9k paired cases
    assert " ± " in noisy_row  # two seeds: mean ± standard deviation
    assert "fake-narm (" not in table3  # the ablation settings (d=50) stay out of Table 3
    table4 = page.split("## Table 4")[1].split("##")[0]
    hybrid = next(line for line in table4.splitlines() if line.startswith("| hybrid"))
    assert hybrid.count("not run") == 0 and "| global" in table4
    rerendered = tmp_path / "again"
    rerendered.mkdir()
    assert main(["--suite", "paper", "--tables-only", *common]) == 0
    assert (tmp_path / "synthetic.md").read_text() == page


def test_the_page_says_which_runs_ran_on_which_hardware(tmp_path):
    args = ["--results-dir", str(tmp_path), "--no-progress", "--tables-only"]
    assert main(["--methods", "pop,test_suites:Noisy", *args[:-1]]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "- Hardware: cpu (" in page and ", every run." in page
    for name, device in (("noisy", "cuda (a GPU)"), ("pop", None)):  # None: a result from before devices were kept
        raw = next((tmp_path / "raw" / "synthetic").glob(f"*/{name}-*.json"))
        result = json.loads(raw.read_text())
        result["device"] = device
        raw.write_text(json.dumps(result))
    assert main(args) == 0
    header = (tmp_path / "synthetic.md").read_text().split("\n## ")[0]
    assert "- Hardware: cuda (a GPU): noisy; unknown: pop." in header
    assert "Costs compare only runs on the same hardware." in header


def test_issue_20_two_settings_of_one_method_are_labelled_by_their_settings(tmp_path):
    args = ["--results-dir", str(tmp_path), "--no-progress"]
    assert main(["--methods", "test_suites:FakeNARM", *args]) == 0
    assert main(["--methods", "test_suites:FakeNARM", "--set", "test_suites:FakeNARM.noise=0.100001", *args]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "| fake-narm (noise=0.100001) " in page and "| fake-narm " in page  # never a bare hash


def test_dask_cluster_on_loopback_gives_the_same_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        args = ["--methods", "pop", "--no-progress", "--jobs", "2", "--seeds", "0,1"]
        assert main([*args, "--backend", "dask", "--cluster", cluster.scheduler_address, "--results-dir", str(tmp_path / "dask")]) == 0
    assert main([*args, "--results-dir", str(tmp_path / "local")]) == 0
    local = sorted((tmp_path / "local" / "raw" / "synthetic").glob("*/*.json"))
    assert local  # the comparison below compares something
    for path in local:
        other = json.loads((tmp_path / "dask" / path.relative_to(tmp_path / "local")).read_text())
        assert json.loads(path.read_text())["by_ties"] == other["by_ties"]


def test_paper_suite_quick_runs_every_built_in_and_renders_every_table_and_figure(tmp_path):
    """The issue's acceptance command, ``run_benchmark.py --suite paper --quick``, on the small
    synthetic data: one epoch per trained model, every table, both figures."""
    from sessionbench.registry import builtin_names, resolve

    assert main(["--suite", "paper", "--quick", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    for title in ("## Table 1", "## Table 2", "## Table 3", "## Table 4", "## Table 5", "Figure 5", "Figure 6"):
        assert title in page
    table3 = page.split("## Table 3")[1].split("##")[0]
    main_suite = [name for name in builtin_names() if "main" in resolve(name).suites]
    assert {"pop", "spop", "itemknn", "bprmf", "fpmc", "gru4rec", "gru4rec-improved", "narm"} <= set(main_suite)
    for name in main_suite:
        assert f"| {name} " in table3
    assert "not run" not in page.split("## Table 2")[1].split("## Table 3")[0]
    assert "not run" not in page.split("## Table 4")[1].split("## Table 5")[0]
    assert "Paper: no published numbers for this dataset." in page  # not a word about DIGINETICA
    for png in [tmp_path / "synthetic-figure5.png", *(tmp_path / "raw" / "synthetic").glob("*/narm-*-attention.png")]:
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "raw" / "synthetic").glob("*/narm-*-attention.png"))
    # the page links its figures under stable names, beside it
    assert "![Figure 6](synthetic-figure6.png)" in page and (tmp_path / "synthetic-figure6.png").read_bytes()[:4] == b"\x89PNG"
