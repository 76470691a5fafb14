"""Issue 20, class 4: damage is named and recovered from; one failing job costs only itself."""

import errno
import json
import logging
import threading

import numpy as np
import pytest
from integrity_plugins import (
    job,
    run,
)

from sessionbench.cli import main
from sessionbench.data import load_dataset
from sessionbench.harness import run_jobs
from sessionbench.training import Checkpoint, train_epochs

# 4. Damage is named and recovered from


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_issue_20_a_truncated_result_is_set_aside_and_run_again(tmp_path, caplog, suffix):
    first = run(tmp_path)
    damaged = first.path.with_suffix(suffix)
    damaged.write_bytes(damaged.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = run(tmp_path)
    assert again.status == "ran" and str(damaged) in caplog.text and "set aside" in caplog.text
    assert damaged.with_name(damaged.name + ".damaged").is_file()  # kept, not deleted
    assert again.result["by_ties"] == first.result["by_ties"]


def test_issue_20_tables_only_names_a_damaged_result_and_renders_the_rest(tmp_path, caplog):
    args = ["--methods", "pop,spop", "--results-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    (bad,) = (tmp_path / "raw" / "synthetic").glob("*/spop-*.json")
    bad.write_text('{"method": "spop", "metr')
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        assert main([*args, "--tables-only"]) == 0
    page = (tmp_path / "synthetic.md").read_text()
    assert "| pop " in page and "| spop " not in page and str(bad) in caplog.text


def test_issue_20_a_truncated_cache_file_is_set_aside_and_rebuilt(tmp_path, caplog):
    split = load_dataset("synthetic", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    assert again.fingerprint == split.fingerprint and str(entry) in caplog.text
    assert entry.with_name(entry.name + ".damaged").is_file() and entry.is_file()


def test_issue_20_a_cache_file_with_flipped_bytes_is_not_used(tmp_path, caplog):
    split = load_dataset("synthetic", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    data = bytearray(entry.read_bytes())
    with np.load(entry) as z:
        items = z["train.items"]
    position = bytes(data).find(items[:64].tobytes())  # inside the uncompressed item array
    data[position + 8] ^= 0x01
    entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    assert "is damaged" in caplog.text and again.fingerprint == split.fingerprint


def test_issue_20_a_checkpoint_with_flipped_bytes_is_named_and_training_starts_afresh(tmp_path, caplog):
    path = tmp_path / "t.pt"
    rng = np.random.default_rng(0)
    saved = Checkpoint(path, {"run": 1}, {"rng": rng})
    train_epochs(lambda epoch: float(rng.random()), epochs=2, progress=False, checkpoint=saved)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    again = Checkpoint(path, {"run": 1}, {"rng": np.random.default_rng(0)})
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        train_epochs(lambda epoch: 0.5, epochs=2, progress=False, checkpoint=again)
    assert again.resumed_epochs == 0 and str(path) in caplog.text and "damaged or truncated" in caplog.text


def test_issue_20_a_full_disk_while_checkpointing_costs_only_the_resume(tmp_path, monkeypatch, caplog):
    import sessionbench.checkpoints as checkpoints

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "atomic_write", full)
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        history = train_epochs(lambda epoch: 1.0, epochs=2, progress=False, checkpoint=Checkpoint(tmp_path / "t.pt", {}))
    assert len(history) == 2 and "could not write the checkpoint" in caplog.text and "No space left" in caplog.text


def test_issue_20_two_identical_runs_at_once_both_end_well_with_one_result(tmp_path):
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(run(tmp_path, "integrity_plugins:Slow"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.status for o in outcomes) == ["ran", "reused"]
    files = sorted(p.name for p in outcomes[0].path.parent.iterdir())
    assert len([f for f in files if f.endswith(".json")]) == 1 and not [f for f in files if "tmp" in f]


def test_issue_20_a_job_calling_sys_exit_is_recorded_as_failed_and_the_others_run(tmp_path):
    outcomes = run_jobs([job("integrity_plugins:Exits"), job()], results_dir=tmp_path, progress=False)
    assert [o.status for o in outcomes] == ["failed", "ran"] and "SystemExit: 3" in outcomes[0].error


def test_issue_20_a_killed_worker_costs_only_its_own_job(tmp_path):
    jobs = [job("integrity_plugins:Killed"), job(), job("pop")]
    outcomes = run_jobs(jobs, results_dir=tmp_path, progress=False, n_jobs=2)
    assert [o.status for o in outcomes] == ["failed", "ran", "ran"]
    assert "SIGKILL" in outcomes[0].error
    (failure,) = (tmp_path / "raw" / "synthetic").glob("*/killed-*.failed.json")
    assert "SIGKILL" in json.loads(failure.read_text())["error"]




def test_issue_20_a_flipped_digit_in_a_result_json_is_caught(tmp_path, caplog):
    first = run(tmp_path)
    result = json.loads(first.path.read_text())
    result["by_ties"]["conservative"]["metrics"]["recall@20"] += 0.01
    first.path.write_text(json.dumps(result))
    with caplog.at_level(logging.WARNING, logger="sessionbench"):
        again = run(tmp_path)
    assert again.status == "ran" and "metrics are not those of its ranks file" in caplog.text


