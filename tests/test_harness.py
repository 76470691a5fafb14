"""The harness and the CLI end to end on the small synthetic data: raw results, reuse, --force,
failures, interruption, tables regenerated without training."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sessionbench.cli import main
from sessionbench.harness import Job, run_job, run_jobs
from sessionbench.recommender import Recommender
from sessionbench.training import Checkpoint, train_epochs


class RandomScores(Recommender):
    """The trivial recommender that runs the whole harness in seconds."""

    name = "random"
    paper_row = None

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, split, *, seed, device="cpu", progress=True):
        self.n_items_, self.rng_ = split.n_items, np.random.default_rng(seed)
        return self

    def score(self, batch):
        return self.scale * self.rng_.random((len(batch), self.n_items_), dtype=np.float32)


class Exploding(RandomScores):
    name = "exploding"

    def fit(self, split, *, seed, device="cpu", progress=True):
        raise RuntimeError("boom in fit")


class Chatty(RandomScores):
    """Logs at INFO inside fit, as a model's epochs do."""

    name = "chatty"

    def fit(self, split, *, seed, device="cpu", progress=True):
        logging.getLogger("sessionbench.chatty").info("chatty fitted")
        return super().fit(split, seed=seed, device=device, progress=progress)


class Interrupted(RandomScores):
    name = "interrupted"

    def fit(self, split, *, seed, device="cpu", progress=True):
        raise KeyboardInterrupt


class Resumable(RandomScores):
    """Three epochs through train_epochs, saved to the harness's checkpoint; interrupted after
    ``interrupt_after`` epochs when set."""

    name = "resumable"
    interrupt_after: int | None = None

    def fit(self, split, *, seed, device="cpu", progress=True, checkpoint=None):
        rng = np.random.default_rng(seed)

        def interrupt(entry):
            if entry.epoch + 1 == self.interrupt_after:
                raise KeyboardInterrupt

        saved = None if checkpoint is None else Checkpoint(checkpoint, {"seed": seed}, {"rng": rng})
        self.history_ = train_epochs(lambda epoch: rng.random(), epochs=3, progress=False, on_epoch=interrupt, checkpoint=saved)
        # a resumed fit reports a day of earlier training, which the harness must add to its fit time
        self.resumed_ = {"epochs": saved.resumed_epochs, "seconds": 86400.0} if saved and saved.resumed_epochs else None
        return super().fit(split, seed=seed)


def split_dir(root, part="raw", name="synthetic"):
    """The one split folder of ``name`` under ``root/part`` (results are kept per fingerprint)."""
    (folder,) = (root / part / name).iterdir()
    return folder


def run(tmp_path, method="test_harness:RandomScores", **kwargs):
    return run_job(Job("synthetic", method, seed=kwargs.pop("seed", 0)), results_dir=tmp_path, progress=False, **kwargs)


def test_a_run_writes_its_raw_result_and_ranks(tmp_path):
    outcome = run(tmp_path)
    assert outcome.status == "ran"
    result = json.loads(outcome.path.read_text())
    assert outcome.path.name.startswith("random-") and outcome.path.name.endswith("-seed0.json")
    assert result["params"] == {"scale": 1.0} and result["method"] == "random"
    assert result["epochs"] is None  # it trains no epochs
    assert result["n_test_cases"] == result["dataset_info"]["stats"]["test_sessions"]
    assert set(result["by_ties"]) == {"conservative", "standard", "median"}
    assert result["peak_rss_bytes"] > 0 and result["fit_seconds"] >= 0 and "torch" in result["versions"]
    # costs are grouped by this text: it names the instruction set, not only "x86_64"
    assert result["device"].startswith("cpu (") and f", {torch.backends.cpu.get_cpu_capability()}, " in result["device"]
    with np.load(outcome.path.with_suffix(".npz")) as z:
        ranks = 1 + z["greater"] + z["equal"]
    assert np.mean(ranks <= 20) == pytest.approx(result["metrics"]["recall@20"])


def test_finished_runs_are_reused_unless_forced(tmp_path):
    first = run(tmp_path)
    assert run(tmp_path).status == "reused"
    forced = run(tmp_path, force=True)
    assert forced.status == "ran" and forced.path == first.path
    assert run(tmp_path, seed=1).path != first.path


def test_a_failing_job_is_recorded_and_the_others_go_on(tmp_path):
    jobs = [Job("synthetic", "test_harness:Exploding"), Job("synthetic", "test_harness:RandomScores")]
    outcomes = run_jobs(jobs, results_dir=tmp_path, progress=False)
    assert [o.status for o in outcomes] == ["failed", "ran"]
    assert "RuntimeError: boom in fit" in outcomes[0].error
    failure = json.loads(next(split_dir(tmp_path).glob("exploding-*.failed.json")).read_text())
    assert "boom in fit" in failure["traceback"]


def test_an_interrupted_run_leaves_finished_results_and_no_partial_file(tmp_path):
    run(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, method="test_harness:Interrupted")
    files = sorted(p.name for p in split_dir(tmp_path).iterdir())
    assert len(files) == 2 and all(f.startswith("random-") for f in files)


def test_an_interrupted_training_resumes_from_its_checkpoint_unless_forced(tmp_path, monkeypatch):
    monkeypatch.setattr(Resumable, "interrupt_after", 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, method="test_harness:Resumable")
    checkpoints = list(split_dir(tmp_path, "checkpoints").glob("resumable-*-seed0.pt"))
    assert len(checkpoints) == 1
    monkeypatch.setattr(Resumable, "interrupt_after", None)
    outcome = run(tmp_path, method="test_harness:Resumable")
    result = json.loads(outcome.path.read_text())
    assert outcome.status == "ran" and result["resumed"]["epochs"] == 2
    assert [e["epoch"] for e in result["epochs"]] == [0, 1, 2]  # the epochs before the interruption too
    assert 86400 <= result["fit_seconds"] < 86400 + 60
    assert not checkpoints[0].exists()  # the result replaces it
    monkeypatch.setattr(Resumable, "interrupt_after", 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, method="test_harness:Resumable", force=True)
    monkeypatch.setattr(Resumable, "interrupt_after", None)
    whole = run(tmp_path, method="test_harness:Resumable", force=True).result
    assert whole["resumed"] is None  # --force starts afresh
    assert [e["loss"] for e in whole["epochs"]] == [e["loss"] for e in result["epochs"]]


def test_a_result_records_the_code_its_run_started_from(tmp_path, monkeypatch):
    import sessionbench.provenance as provenance

    states = iter([("started-here", False), ("moved-on", True)])
    monkeypatch.setattr(provenance, "_git_state", lambda root: next(states))
    provenance.code_version.cache_clear()
    try:
        result = run(tmp_path).result
        again = run(tmp_path, force=True).result  # run again, not reused
    finally:
        provenance.code_version.cache_clear()
    assert result["versions"]["commit"] == "started-here" and result["code"]["dirty"] is False
    assert again["code"]["commit"] == "started-here"  # read once per process, before any training


def test_cli_end_to_end_then_tables_only_gives_identical_markdown(tmp_path, caplog):
    args = ["--methods", "pop,spop", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    table = (tmp_path / "synthetic.md").read_text()
    assert "## Table 1" in table and "## Table 3" in table and "| spop " in table
    assert "Ties: **conservative**" in table
    caplog.set_level("INFO", logger="sessionbench")
    assert main(args) == 0  # everything reused
    assert "0 ran, 2 reused, 0 failed" in caplog.text
    (tmp_path / "synthetic.md").unlink()
    assert main([*args, "--tables-only"]) == 0
    assert (tmp_path / "synthetic.md").read_text() == table


def test_cli_tie_mode_changes_the_tables_not_the_runs(tmp_path):
    args = ["--methods", "pop", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--tables-only", "--ties", "standard"]) == 0
    assert "Ties: **standard**" in (tmp_path / "synthetic.md").read_text()


def test_cli_exit_code_reports_a_failed_job(tmp_path):
    args = ["--methods", "pop", "--recommender", "test_harness:Exploding", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 1
    assert "## Runs that failed" in (tmp_path / "synthetic.md").read_text()


def test_parallel_jobs_give_the_same_metrics(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    for folder, jobs in ((serial, "1"), (parallel, "2")):
        assert main(["--methods", "pop,spop", "--results-dir", str(folder), "--jobs", jobs, "--no-progress"]) == 0
    for path in split_dir(serial).glob("*.json"):
        other = json.loads((split_dir(parallel) / path.name).read_text())
        assert json.loads(path.read_text())["by_ties"] == other["by_ties"]


def test_parallel_workers_log_what_a_serial_run_logs(tmp_path):
    # a fresh process, so that the loky workers are fresh too (as in a real run)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    script = Path(__file__).parents[1] / "run_benchmark.py"
    command = [sys.executable, str(script), "--methods", "pop", "--recommender", "test_harness:Chatty", "--jobs", "2"]
    done = subprocess.run(
        [*command, "--results-dir", str(tmp_path), "--no-progress"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines().count("chatty fitted") == 1, done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "narn"], "unknown method 'narn'; known: "),
        (["--dataset", "digi"], "unknown dataset 'digi'; known: diginetica"),
        (["--methods", "pop", "--set", "pop.alpha=1"], "--set for pop: "),
        (["--methods", "pop", "--set", "spop.x=1"], "--set names 'spop', which is not among the methods run"),
        (["--methods", "pop", "--set", "popalpha"], "expected METHOD.PARAM=VALUE"),
        (["--seeds", "a,b"], "expected comma-separated integers"),
    ],
)
def test_bad_command_lines_say_what_is_known(tmp_path, capsys, args, message):
    assert main([*args, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unwritable_results_dir_is_reported_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--methods", "pop", "--results-dir", str(blocker / "results")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_verbose_keeps_our_debug_lines_and_drops_matplotlibs(caplog):
    caplog.set_level("DEBUG")
    saved = {name: logging.getLogger(name).level for name in ("matplotlib", "PIL")}
    try:
        assert main(["--verbose", "--list"]) == 0
        logging.getLogger("matplotlib.font_manager").debug("findfont: score(...)")
        logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR'")
        logging.getLogger("sessionbench.harness").debug("epoch 1: loss 7.2")
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    assert [r.getMessage() for r in caplog.records] == ["epoch 1: loss 7.2"]
