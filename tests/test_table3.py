"""Table 3's layout: the methods beyond the paper below the paper's rows, and every tie mode for
the methods whose scores tie."""

import json

import numpy as np

from sessionbench.cli import main
from sessionbench.recommender import Recommender
from sessionbench.runs import load_runs


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
