"""Per-dataset published settings: gru4rec-tuned takes the official GRU4Rec parameter file of
the dataset it runs on, the page labels it by what differs from that file and names the file."""

from __future__ import annotations

from pathlib import Path

from baselines.gru4rec.tuned import OFFICIAL_SETTINGS, GRU4RecTuned, official_file
from sessionbench.harness import _settings
from sessionbench.plan import plan
from sessionbench.runs import Group
from sessionbench.tables import _fit_reports
from sessionbench.testing import oracle_split

YOOCHOOSE = OFFICIAL_SETTINGS["yoochoose_xe_shared_best"]


def test_the_plan_takes_each_datasets_official_file():
    jobs = {(j.dataset, j.seed): j for j in plan(["diginetica", "yoochoose-1-64"], ["gru4rec-tuned"], [0, 1])}
    assert len(jobs) == 4
    assert jobs["diginetica", 0].params == {}  # the constructor's defaults are the DIGINETICA file
    assert jobs["yoochoose-1-64", 1].params == YOOCHOOSE
    on_yoochoose = GRU4RecTuned(**jobs["yoochoose-1-64", 0].params).get_params()
    assert on_yoochoose["loss"] == "cross-entropy" and on_yoochoose["logq"] == 1.0 and on_yoochoose["hidden_size"] == 480
    assert on_yoochoose["batch_size"] == 48 and on_yoochoose["learning_rate"] == 0.07 and on_yoochoose["dropout_hidden"] == 0.2
    assert all(j.variant is None for j in jobs.values())  # both are Table 3's row


def test_an_override_goes_on_top_of_the_datasets_file():
    (job,) = plan(["yoochoose-1-4"], ["gru4rec-tuned"], [0], params={"gru4rec-tuned": {"hidden_size": 100}})
    assert job.params == {**YOOCHOOSE, "hidden_size": 100} and job.variant is None  # --set is the run's own setting


def test_other_methods_keep_one_default_everywhere():
    jobs = plan(["diginetica", "yoochoose-1-64"], ["gru4rec", "narm"], [0])
    assert [j.params for j in jobs] == [{}, {}, {}, {}]


def test_a_run_is_labelled_by_what_differs_from_its_datasets_file():
    params = GRU4RecTuned(**YOOCHOOSE).get_params()
    assert _settings(GRU4RecTuned, params, "yoochoose-1-64") == {}
    assert _settings(GRU4RecTuned, {**params, "hidden_size": 100}, "yoochoose-1-64") == {"hidden_size": 100}
    assert _settings(GRU4RecTuned, params, "diginetica")["loss"] == "cross-entropy"  # not DIGINETICA's file


def test_official_file_names_the_file_the_settings_equal():
    assert official_file(GRU4RecTuned().get_params()) == "the official diginetica_bprmax_shared_best.py"
    assert official_file(GRU4RecTuned(**YOOCHOOSE).get_params()) == "the official yoochoose_xe_shared_best.py"
    assert official_file(GRU4RecTuned(**{**YOOCHOOSE, "epochs": 3}).get_params()).startswith("none")


def test_a_fit_reports_its_parameter_file():
    tiny = {"hidden_size": 8, "batch_size": 16, "n_negatives": 16, "epochs": 1}
    rec = GRU4RecTuned(**tiny).fit(oracle_split(n_train=60), seed=0, progress=False)
    assert rec.fit_report_ == {"parameter file": "none of the official files (own settings)"}


def test_the_page_names_a_report_once_for_the_seeds_that_share_it():
    runs = [
        {"seed": s, "settings": {}, "class": "c", "identity": {"code": "x"}, "fit_report": {"parameter file": f}}
        for s, f in [(0, "the official a.py"), (1, "the official a.py"), (2, "the official b.py")]
    ]
    text = _fit_reports([Group("gru4rec-tuned", "gru4rec-tuned", "GRU4Rec (tuned)", runs, Path("."))])
    assert "- gru4rec-tuned seeds 0, 1, parameter file: the official a.py" in text
    assert "- gru4rec-tuned seed 2, parameter file: the official b.py" in text
