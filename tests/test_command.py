"""The installed command: ``sessionbench`` and ``python -m sessionbench`` run the benchmark from
any directory, and their errors say ``sessionbench: error:``."""

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
