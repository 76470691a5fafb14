"""The installed command: ``sessionbench`` and ``python -m sessionbench`` run the benchmark from
any directory, and their errors say ``sessionbench: error:``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "sessionbench"


@pytest.mark.parametrize("command", [[sys.executable, "-m", "sessionbench"], [str(SCRIPT)]], ids=["python -m", "console script"])
def test_the_command_runs_the_benchmark_from_another_directory(tmp_path, command):
    if not Path(command[0]).exists():
        pytest.skip(f"{command[0]} is not installed (pip install -e . creates it)")
    done = subprocess.run([*command, "--methods", "pop", "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| pop " in (tmp_path / "results" / "synthetic.md").read_text()


def test_the_module_of_the_command_line_runs_it_too(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sessionbench.cli", "--list"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "narm" in done.stdout  # it used to exit 0 doing nothing


def test_errors_name_the_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sessionbench", "--methods", "narn"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("sessionbench: error: unknown method 'narn'")


def test_a_log_file_gets_one_line_per_job_and_no_terminal_codes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sessionbench", "--methods", "pop,spop"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr  # no progress bars when stderr is a file
    lines = done.stderr.splitlines()
    assert sum("synthetic pop seed0" in line for line in lines) == 1 and sum("synthetic spop seed0" in line for line in lines) == 1
    assert sum(line.startswith("synthetic: ") for line in lines) <= 1  # the split: once when built, never per job


def test_a_config_file_runs_the_same_jobs_as_the_equivalent_flags(tmp_path):
    from sessionbench.cli import main

    config = tmp_path / "experiment.toml"
    config.write_text(
        'datasets = ["synthetic"]\nmethods = ["pop", "itemknn"]\nseeds = [0, 1]\nno_progress = true\n'
        '[data_options]\nseed = 2\n[set.itemknn]\nn_neighbors = 50\n'
    )
    assert main(["--config", str(config), "--results-dir", str(tmp_path / "file")]) == 0
    flags = ["--methods", "pop,itemknn", "--seeds", "0,1", "--data-option", "seed=2", "--set", "itemknn.n_neighbors=50", "--no-progress"]
    assert main([*flags, "--results-dir", str(tmp_path / "flags")]) == 0
    names = {p.relative_to(tmp_path / "file") for p in (tmp_path / "file").rglob("*.json")}
    assert names and names == {p.relative_to(tmp_path / "flags") for p in (tmp_path / "flags").rglob("*.json")}
    assert any("itemknn" in p.name for p in names) and len(names) == 4
    # a flag overrides the file
    assert main(["--config", str(config), "--seeds", "3", "--results-dir", str(tmp_path / "over")]) == 0
    assert {json.loads(p.read_text())["seed"] for p in (tmp_path / "over").rglob("*.json")} == {3}


def test_a_config_file_with_an_unknown_key_says_which(tmp_path, capsys):
    from sessionbench.cli import main

    config = tmp_path / "experiment.toml"
    config.write_text('method = ["pop"]\n')
    assert main(["--config", str(config)]) == 2
    assert "unknown key method; known: " in capsys.readouterr().err


def test_set_addresses_a_plugin_by_its_name(tmp_path, monkeypatch):
    from sessionbench.cli import main

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "examples" / "plugin"))
    args = ["--recommender", "recentpop:RecentPop", "--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"]
    assert main([*args, "--set", "recent-pop.boost=2.5"]) == 0
    (result,) = tmp_path.glob("raw/synthetic/*/recent-pop-*.json")
    assert json.loads(result.read_text())["params"]["boost"] == 2.5
