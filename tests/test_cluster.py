"""dask and ray for real: local clusters started here, a relative --results-dir, every method on
the page, and workers that cannot write named before any job runs."""

import json
from pathlib import Path

import pytest

from sessionbench.cli import main

METHODS = ["--methods", "pop,spop", "--seeds", "0,1", "--no-progress", "--jobs", "2"]


def page_methods(results: Path) -> set[str]:
    table3 = (results / "synthetic.md").read_text().split("## Table 3")[1].split("\n\n")[1]
    return {row.split("|")[1].strip() for row in table3.splitlines()[2:]}


def results_of(results: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text())["by_ties"] for p in results.glob("raw/synthetic/*/*.json")}


def test_dask_local_cluster_with_a_relative_results_dir(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    (tmp_path / "workers").mkdir()
    (tmp_path / "client").mkdir()
    monkeypatch.chdir(tmp_path / "workers")  # the workers start here, the client then works elsewhere
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.chdir(tmp_path / "client")
        assert main([*METHODS, "--backend", "dask", "--cluster", cluster.scheduler_address, "--results-dir", "relative"]) == 0
    client = tmp_path / "client"
    assert page_methods(client / "relative") == {"pop", "spop"}
    assert len(results_of(client / "relative")) == 4  # two methods, two seeds: written where the client asked
    assert not list((tmp_path / "workers").rglob("*.json"))
    assert main([*METHODS[:-2], "--results-dir", "local"]) == 0
    assert results_of(client / "relative") == results_of(client / "local")


def test_dask_workers_that_cannot_write_are_named_before_any_job(tmp_path, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    import sessionbench.cluster as cluster_module

    monkeypatch.setattr(cluster_module, "can_write", lambda folder: "PermissionError: read-only file system")
    with distributed.LocalCluster(host="127.0.0.1", n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main([*METHODS, "--backend", "dask", "--cluster", cluster.scheduler_address, "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"--results-dir {tmp_path / 'r'}: 1 of 1 workers cannot write there" in err and "read-only file system" in err
    assert not list((tmp_path / "r").glob("raw/synthetic/*/*.json"))


def test_ray_local_run_with_a_relative_results_dir(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    assert main([*METHODS, "--backend", "ray", "--results-dir", "relative"]) == 0
    assert page_methods(tmp_path / "relative") == {"pop", "spop"}
    assert len(results_of(tmp_path / "relative")) == 4
