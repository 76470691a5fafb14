"""Issue 20, classes 5 and 6: files go only where they belong, and what ran is what is recorded."""

import json
import sys

import pytest
from integrity_plugins import Scores, clicks_csv, run

from sessionbench.cli import main
from sessionbench.runs import Group

# 5. Files go only where they belong


def test_issue_20_a_data_option_cannot_move_the_page_out_of_the_results(tmp_path, capsys):
    results = tmp_path / "a" / "b" / "results"
    assert main(["--tables-only", "--data-option", "size=/../../../x", "--results-dir", str(results)]) == 2
    assert "option size must be one of" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".md"] == []


def test_issue_20_a_result_cannot_point_the_page_at_another_file(tmp_path):
    outcome = run(tmp_path, "integrity_plugins:Figure")
    group = Group("figure", "", None, [outcome.result], outcome.path.parent)
    assert group.attention_figure == outcome.result["attention_figure"]
    for evil in ("/etc/passwd", "../../../secret.png", "..png"):
        assert Group("figure", "", None, [{**outcome.result, "attention_figure": evil}], outcome.path.parent).attention_figure is None


def test_issue_20_names_are_escaped_on_the_page_and_in_file_names(tmp_path):
    class Evil(Scores):
        name = "ev|il\nname/../x"

    import integrity_plugins

    integrity_plugins.Evil = Evil  # importable as integrity_plugins:Evil
    Evil.__module__, Evil.__qualname__ = "integrity_plugins", "Evil"
    try:
        outcome = run(tmp_path, "integrity_plugins:Evil")
        assert outcome.status == "ran" and outcome.path.resolve().is_relative_to(tmp_path.resolve())
        assert "/" not in outcome.path.name and "\n" not in outcome.path.name
        assert main(["--methods", "pop", "--recommender", "integrity_plugins:Evil", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    finally:
        del integrity_plugins.Evil
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




def test_a_page_without_narm_says_why_table_5_is_absent(tmp_path):
    assert main(["--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "## Table 5" in page and "this page has no run of NARM" in page
