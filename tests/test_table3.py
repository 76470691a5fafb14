"""Table 3's layout: the methods beyond the paper below the paper's rows, every tie mode for
the methods whose scores tie, and the paired bootstrap against NARM over test sessions."""

import json

import numpy as np
import pytest

from sessionbench.bootstrap import case_metrics
from sessionbench.cli import main
from sessionbench.evaluation import KS, TIE_MODES, metrics, ranks_from_counts
from sessionbench.recommender import Recommender
from sessionbench.runs import Group, load_runs
from sessionbench.table3 import table3


class Coarse(Recommender):
    """Two score levels: the ``top`` most popular items 1, every other item 0 (most items tie)."""

    name = "coarse"

    def __init__(self, top: int = 5):
        self.top = top

    def fit(self, split, *, seed, device="cpu", progress=True):
        counts = np.bincount(split.train.items, minlength=split.n_items)
        self.scores_ = np.zeros(split.n_items, dtype=np.float32)
        self.scores_[np.argsort(-counts, kind="stable")[: self.top]] = 1.0
        return self

    def score(self, batch):
        return np.tile(self.scores_, (len(batch), 1))


class Distinct(Recommender):
    """A score per item that never ties: item i scores -i."""

    name = "distinct"
    paper_row = "POP"

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.n_items_ = split.n_items
        return self

    def score(self, batch):
        return np.tile(-np.arange(self.n_items_, dtype=np.float32), (len(batch), 1))


def _table3(page: str) -> str:
    return page.split("## Table 3: ")[1].split("\n## ")[0]


def test_a_method_beyond_the_paper_is_listed_below_the_papers_rows(tmp_path):
    assert main(["--methods", "test_table3:Coarse,test_table3:Distinct", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    rows = [line.split("|")[1].strip() for line in _table3((tmp_path / "synthetic.md").read_text()).split("###")[0].splitlines() if line.startswith("| ")]
    assert rows[1:] == ["distinct", "*beyond the paper:*", "coarse"]  # rows[0]: the header


def test_only_methods_whose_scores_tie_get_every_tie_mode(tmp_path):
    assert main(["--methods", "test_table3:Coarse,test_table3:Distinct", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    table = _table3((tmp_path / "synthetic.md").read_text()).split("### Table 3 under every tie mode")[1]
    assert "| coarse " in table and "distinct" not in table
    cells = next(line for line in table.splitlines() if line.startswith("| coarse ")).split("|")[2:5]
    conservative, standard, median = (float(c.split("/")[1]) for c in cells)  # MRR@20
    assert conservative < median < standard  # a target among the tied zeros ranks last, first, in between


def test_no_tie_table_when_nothing_ties(tmp_path):
    assert main(["--methods", "test_table3:Distinct", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    assert "under every tie mode" not in (tmp_path / "synthetic.md").read_text()


def test_a_tuned_row_follows_its_methods_own_settings(tmp_path):
    assert main(["--methods", "test_table3:Coarse", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    assert main(["--methods", "test_table3:Coarse", "--set", "test_table3:Coarse.top=3", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    folder = next((tmp_path / "raw" / "synthetic").iterdir())
    for path in folder.glob("coarse-*.json"):  # mark the top=3 run as the tuned one (it sorts first by its key)
        run = json.loads(path.read_text())
        if run["params"]["top"] == 3:
            run["tuning"] = {"n_trials": 7, "metric": "mrr@20"}
            path.write_text(json.dumps(run))
    groups = load_runs(folder).groups
    assert [(g.runs[0]["params"]["top"], g.tuning is not None) for g in groups] == [(5, False), (3, True)]


# Table 3's comparison with NARM: a paired bootstrap over test sessions


class Proposed(Distinct):
    """Distinct's scores under the paper's NARM row: every case ties Distinct's exactly."""

    name = "proposed"
    paper_row = "NARM"


def _cells(table: str) -> dict[str, dict[str, str]]:
    """Table 3's cells by row label and column header."""
    lines = [line for line in table.split("###")[0].splitlines() if line.startswith("| ")]
    split = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    header, rows = split[0], split[1:]
    return {row[0]: dict(zip(header, row)) for row in rows}


def _numbers(cell: str) -> tuple[float, float, float]:
    """(difference, low, high) of a cell like "+1.23 [+0.95, +1.51]"."""
    difference, interval = cell.split(" [")
    low, high = interval.rstrip("]").split(", ")
    return float(difference), float(low), float(high)


LENGTHS = np.random.default_rng(0).integers(1, 7, 600)  # prefixes per session: 600 sessions, ~2100 cases
PREFIX_LENGTHS = np.concatenate([np.arange(1, n + 1) for n in LENGTHS])


def _group(folder, method, greater_by_seed, paper_row=None, prefix_lengths=PREFIX_LENGTHS) -> Group:
    """A group of one run per seed whose cases rank ``greater + 1`` (no ties), its ranks files
    written to ``folder`` as the harness writes them."""
    runs = []
    for seed, greater in enumerate(greater_by_seed):
        greater = np.asarray(greater, dtype=np.int64)
        name = f"{method}-{seed}.npz"
        np.savez(folder / name, greater=greater, equal=np.zeros_like(greater), prefix_lengths=np.asarray(prefix_lengths))
        by_ties = {mode: {"metrics": metrics(ranks_from_counts(greater, np.zeros_like(greater), mode), KS)} for mode in TIE_MODES}
        runs.append({"seed": seed, "by_ties": by_ties, "n_test_cases": len(greater), "ranks_file": name,
                     "fit_seconds": 1.0, "evaluate_seconds": 2.0, "peak_rss_bytes": 2**30})
    return Group(method, method, paper_row, runs, folder)


def _render(groups) -> dict[str, dict[str, str]]:
    return _cells(table3(groups, {id(g): g.method for g in groups}, "conservative", None))


def test_a_known_difference_from_narm_is_rendered_with_an_interval_that_covers_it(tmp_path):
    rng = np.random.default_rng(1)
    narm_seeds = [rng.integers(0, 40, len(PREFIX_LENGTHS)) for _ in range(2)]
    better = np.maximum(narm_seeds[0] - 8, 0)  # every rank up to 8 places higher
    narm, other = _group(tmp_path, "narm", narm_seeds, "NARM"), _group(tmp_path, "other", [better], "POP")
    cells = _render([other, narm])
    # the difference of the per-case values, NARM's averaged over its two seeds
    x, y = case_metrics(better, 0 * better), [case_metrics(g, 0 * g) for g in narm_seeds]
    for metric, column in (("recall@20", "ΔR@20 vs NARM [95% CI]"), ("mrr@20", "ΔMRR@20 vs NARM [95% CI]")):
        expected = 100 * (x[metric].mean() - np.mean([m[metric] for m in y], axis=0).mean())
        difference, low, high = _numbers(cells["other"][column])
        assert expected > 1 and difference == round(expected, 2)
        assert low < expected < high and 0 < low  # covers it, and excludes no difference
    assert cells["other"]["p vs NARM"] == "<0.001 / <0.001"
    assert all(cells["narm"][c] == "" for c in ("ΔR@20 vs NARM [95% CI]", "ΔMRR@20 vs NARM [95% CI]", "p vs NARM"))
    recall = [100 * metrics(ranks_from_counts(g, 0 * g, "conservative"), KS)["recall@20"] for g in narm_seeds]
    assert cells["narm"]["Recall@20"] == f"{np.mean(recall):.2f} ± {np.std(recall, ddof=1):.2f}"  # two seeds
    assert " ± " not in cells["other"]["Recall@20"] and cells["narm"]["seeds"] == "2"


def test_the_interval_is_over_sessions_not_cases(tmp_path):
    # NARM misses every case of some sessions, the other method hits them: cases of a session move
    # together, so an interval over sessions is wider than one over independent cases would be
    rng = np.random.default_rng(2)
    session = np.cumsum(PREFIX_LENGTHS == 1) - 1
    narm = np.where(rng.random(len(LENGTHS))[session] < 0.5, 30, 0)
    other = np.where(rng.random(len(LENGTHS))[session] < 0.5, 30, 0)
    cells = _render([_group(tmp_path, "narm", [narm], "NARM"), _group(tmp_path, "other", [other])])
    difference, low, high = _numbers(cells["other"]["ΔR@20 vs NARM [95% CI]"])
    d = (other < 20).astype(float) - (narm < 20)
    by_case = 100 * 2 * 1.96 * d.std() / np.sqrt(len(d))  # the width an interval over independent cases has
    assert high - low > 1.5 * by_case
    assert low < difference < high


def test_identical_cases_give_p_1_and_other_test_cases_n_a(tmp_path):
    rng = np.random.default_rng(3)
    greater = rng.integers(0, 40, len(PREFIX_LENGTHS))
    short = PREFIX_LENGTHS[:-1] if PREFIX_LENGTHS[-1] > 1 else PREFIX_LENGTHS[:-2]
    groups = [_group(tmp_path, "narm", [greater], "NARM"), _group(tmp_path, "twin", [greater]),
              _group(tmp_path, "shorter", [greater[: len(short)]], prefix_lengths=short)]
    cells = _render(groups)
    assert cells["twin"]["ΔR@20 vs NARM [95% CI]"] == "+0.00 [+0.00, +0.00]" and cells["twin"]["p vs NARM"] == "1 / 1"
    assert [cells["shorter"][c] for c in ("ΔR@20 vs NARM [95% CI]", "ΔMRR@20 vs NARM [95% CI]", "p vs NARM")] == ["n/a"] * 3


def test_no_comparison_without_a_narm_row(tmp_path):
    greater = np.random.default_rng(4).integers(0, 40, len(PREFIX_LENGTHS))
    groups = [_group(tmp_path, "other", [greater], "POP")]
    table = table3(groups, {id(groups[0]): "other"}, "conservative", None)
    assert _cells(table)["other"]["p vs NARM"] == "" and "no NARM row has run yet" in table


def test_the_note_says_how_the_comparison_is_made(tmp_path):
    greater = np.random.default_rng(5).integers(0, 40, len(PREFIX_LENGTHS))
    groups = [_group(tmp_path, "narm", [greater], "NARM"), _group(tmp_path, "other", [greater + 1])]
    note = table3(groups, {id(g): g.method for g in groups}, "conservative", None).split("\n\n")[2]
    for words in ("paired bootstrap over the test sessions", "2000 resamples of whole sessions", "two-sided",
                  "same resamples", "averaged over the seeds before resampling", "mean ± the sample standard deviation"):
        assert words in note
    assert "Wilcoxon" not in note


def test_pages_compare_with_narm_on_the_harness_ranks_files(tmp_path):
    methods = "test_table3:Coarse,test_table3:Distinct,test_table3:Proposed"
    assert main(["--methods", methods, "--results-dir", str(tmp_path), "--no-progress"]) == 0
    cells = _cells(_table3((tmp_path / "synthetic.md").read_text()))
    assert cells["distinct"]["ΔR@20 vs NARM [95% CI]"] == "+0.00 [+0.00, +0.00]" and cells["distinct"]["p vs NARM"] == "1 / 1"
    difference, low, high = _numbers(cells["coarse"]["ΔMRR@20 vs NARM [95% CI]"])
    assert low <= difference <= high and cells["proposed"]["p vs NARM"] == ""
    assert cells["*beyond the paper:*"]["p vs NARM"] == ""


def test_case_sessions_number_the_sessions_from_the_prefix_lengths(tmp_path):
    group = _group(tmp_path, "g", [np.zeros(6), np.ones(6)], prefix_lengths=[1, 2, 3, 1, 1, 2])
    sessions = group.case_sessions()
    assert sessions.dtype == np.int64 and sessions.tolist() == [0, 0, 0, 1, 2, 2]


def test_case_sessions_refuse_prefix_lengths_out_of_order_or_disagreeing(tmp_path):
    with pytest.raises(ValueError, match=r"g-0\.npz.*start at 2, not 1"):
        _group(tmp_path, "g", [np.zeros(3)], prefix_lengths=[2, 1, 2]).case_sessions()
    with pytest.raises(ValueError, match=r"h-0\.npz.*from 1 to 3 at case 1"):
        _group(tmp_path, "h", [np.zeros(3)], prefix_lengths=[1, 3, 1]).case_sessions()
    group = _group(tmp_path, "k", [np.zeros(3)], prefix_lengths=[1, 2, 1])
    group.runs.append(_group(tmp_path, "k2", [np.zeros(3)], prefix_lengths=[1, 1, 2]).runs[0])
    with pytest.raises(ValueError, match=r"k2-0\.npz: its prefix_lengths differ from those of .*k-0\.npz"):
        group.case_sessions()
