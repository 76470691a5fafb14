"""A non-editable install in a fresh environment: the ``sessionbench`` command and ``python -m
sessionbench`` run the default benchmark from another directory, and the plugin of
``examples/plugin`` registers through its entry point as the README says.

The fresh environment is a new virtual environment that borrows this one's third-party
packages (torch is 200 MB) through a ``.pth`` line, which does not load this checkout's
editable install; sessionbench and the plugin are installed into it from wheels, offline.
"""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command, cwd, timeout=300):
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    wheels = base / "wheels"
    for project in (ROOT, ROOT / "examples" / "plugin"):
        _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, project, cwd=base)
    env = base / "env"
    _run(sys.executable, "-m", "venv", env, cwd=base)
    python = env / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=base).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "borrowed.pth").write_text(ours + "\n")  # third-party packages only: a .pth line adds no .pth files
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", *sorted(wheels.glob("*.whl")), cwd=base)
    return env, base


def test_the_installed_command_runs_the_default_benchmark_elsewhere(fresh):
    env, base = fresh
    where = _run(env / "bin" / "python", "-c", "import sessionbench; print(sessionbench.__file__)", cwd=base).stdout
    assert str(ROOT) not in where  # the installed copy, not this checkout
    for name, command in (("script", [env / "bin" / "sessionbench"]), ("module", [env / "bin" / "python", "-m", "sessionbench"])):
        cwd = base / name
        cwd.mkdir()
        _run(*command, "--methods", "pop,spop", cwd=cwd)
        page = (cwd / "results" / "synthetic.md").read_text()
        assert "| pop " in page and "| spop " in page


def test_the_example_plugin_registers_by_its_entry_point(fresh):
    env, base = fresh
    listed = _run(env / "bin" / "sessionbench", "--list", cwd=base).stdout
    assert "recent-pop" in listed and "plugin from sessionbench-recentpop" in listed
    cwd = base / "plugin"
    cwd.mkdir()
    _run(env / "bin" / "sessionbench", "--methods", "recent-pop,pop", "--set", "recent-pop.boost=2", cwd=cwd)
    assert "| recent-pop (boost=2) " in (cwd / "results" / "synthetic.md").read_text()


