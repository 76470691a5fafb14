"""Finding recommenders: built-in names, a plugin installed with an entry point, module:Class."""

import subprocess
import sys
from pathlib import Path

import pytest

from sessionbench.registry import UnknownRecommender, builtin_names, registered, resolve
from sessionbench.testing import RecommenderContract

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin"


def test_builtins_are_published_as_entry_points():
    names = builtin_names()
    assert {"pop", "spop", "itemknn", "narm", "gru4rec", "gru4rec-improved"} <= set(names)
    assert resolve("pop").name == "pop"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownRecommender, match=r"unknown recommender 'narn'; known: .*narm.*module:Class"):
        resolve("narn")


def test_bad_module_path_and_non_recommender_are_refused():
    with pytest.raises(UnknownRecommender, match="cannot load recommender 'nosuch.module:X'"):
        resolve("nosuch.module:X")
    with pytest.raises(UnknownRecommender, match="not a subclass of sessionbench.Recommender"):
        resolve("pathlib:Path")


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """The README's plugin example, really installed (pip, no network) into a folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(PLUGIN)],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))


def test_plugin_is_found_through_its_entry_point(installed_plugin):
    found = registered()["recent-pop"]
    assert found.target == "recentpop:RecentPop" and found.distribution == "sessionbench-recentpop"
    assert not found.builtin and "recent-pop" not in builtin_names()
    assert resolve("recent-pop")(boost=2.0).get_params() == {"boost": 2.0, "decay": 0.5}


def test_plugin_runs_through_the_cli_by_module_and_class(tmp_path, monkeypatch):
    from sessionbench.cli import main

    monkeypatch.syspath_prepend(str(PLUGIN))
    status = main(["--recommender", "recentpop:RecentPop", "--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"])
    assert status == 0
    table = (tmp_path / "synthetic.md").read_text()
    assert "| recent-pop " in table and "| pop " in table


class TestRecentPopContract(RecommenderContract):
    def make(self):
        sys.path.insert(0, str(PLUGIN))
        try:
            return resolve("recentpop:RecentPop")()
        finally:
            sys.path.remove(str(PLUGIN))
