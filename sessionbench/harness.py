"""Runs (dataset x method x hyperparameters x seed) jobs, each once, and stores raw results.

One job fits a recommender and evaluates it on every test prefix. The harness, never the
model, times ``fit`` and evaluation and measures peak memory. The model is fitted on the
split's training view (no test sessions) and scores batches that carry no targets: the
evaluator keeps them. A job's result is a JSON file in its split's folder with the per-case
counts beside it (``.npz``); see :mod:`sessionbench.store` for the layout, the identity a
reuse must match, and how damaged files are set aside. Files are written under unique
temporary names and renamed when complete, so an interrupted run leaves the finished results
intact and nothing half-written. A failing job, whatever it raises (``SystemExit`` included;
``KeyboardInterrupt`` stops the run), or whose worker process dies, records its error in
``<key>.failed.json`` and the other jobs go on.

A job whose hyperparameters a tuning chose (:mod:`sessionbench.tuned`) records how in the
result's ``"tuning"``: the params file, its sha256, trials, metric and validation value. That
record is not part of the identity (the same hyperparameters give the same result however they
were chosen): a reused result takes the record of the job that reuses it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sessionbench.checkpoints import checkpoint_files
from sessionbench.data import Split, load_dataset
from sessionbench.evaluation import KS, TIE_MODES, evaluate, hits_by_length, metrics, ranks_from_counts
from sessionbench.files import atomic_write, inside
from sessionbench.plan import Job, JobOutcome, params_hash, plan
from sessionbench.precision import resolve_precision
from sessionbench.provenance import PeakRSS, code_version, device_description, process_peak_rss, versions
from sessionbench.recommender import Recommender
from sessionbench.registry import resolve
from sessionbench.softmax_models import TEST_BEST
from sessionbench.store import difference, failure_path, locked, read_result, result_identity, result_stem, split_folder
from sessionbench.training import resolve_device

__all__ = ["Job", "JobOutcome", "PeakRSS", "params_hash", "plan", "process_peak_rss", "run_job", "run_jobs", "versions"]

log = logging.getLogger(__name__)


def run_jobs(
    jobs: list[Job],
    *,
    results_dir: Path,
    device: str = "cpu",
    ties: str = "conservative",
    force: bool = False,
    n_jobs: int = 1,
    backend: str | None = None,
    progress: bool = True,
    quick: bool = False,
) -> list[JobOutcome]:
    """Run the jobs (in parallel processes when ``n_jobs > 1``) and return their outcomes, in
    the order of ``jobs``.

    Datasets are loaded once here first, so that bad data is refused before any training and
    parallel workers read the splits from the cache.
    """
    splits = {}  # (name, fingerprint) of each dataset the jobs use
    for key in {_data_key(job) for job in jobs}:
        dataset, data_dir, options = key
        split = load_dataset(dataset, data_dir, **json.loads(options))
        splits[key] = (split.name, split.fingerprint)
        del split
    results_dir = Path(results_dir).resolve()  # workers elsewhere (dask, ray) write where the client asked
    kwargs = dict(results_dir=results_dir, device=device, ties=ties, force=force, quick=quick)
    if n_jobs == 1 or len(jobs) <= 1:
        outcomes = []
        for job in jobs:
            outcome = run_job(job, progress=progress, **kwargs)
            log.info("%s", outcome.summary())
            outcomes.append(outcome)
        return outcomes
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    log_level = logging.getLogger("sessionbench").getEffectiveLevel()
    slots = {i: _slot_or_none(job, splits[_data_key(job)], results_dir, quick, device) for i, job in enumerate(jobs)}  # worked out before any worker runs

    def died(index: int, reason: str) -> JobOutcome:
        return _record_failure(jobs[index], f"WorkerDied: {reason}", slots[index])

    if backend in (None, "local", "loky"):
        from sessionbench.workers import run_in_processes

        tasks = [(job, threads, log_level, kwargs) for job in jobs]
        done: dict[int, JobOutcome] = {}
        for index, outcome in run_in_processes(_run_in_worker, tasks, n_jobs, died):
            log.info("%s", outcome.summary())
            done[index] = outcome
        return [done[i] for i in range(len(jobs))]
    from sessionbench.cluster import run_on_cluster

    tasks = [(job, 0, log_level, kwargs) for job in jobs]  # 0: the workers keep their own thread count
    outcomes = []
    for index, outcome in run_on_cluster(backend, _run_in_worker, tasks, results_dir, died):
        log.info("%s", outcome.summary())
        outcomes.append(outcome)
    return outcomes


def _run_in_worker(job: Job, threads: int, log_level: int, kwargs: dict[str, Any]) -> JobOutcome:
    import torch

    if threads:
        torch.set_num_threads(threads)
    # A worker is a fresh process with no logging configured, where Python's last-resort handler
    # drops everything below WARNING: the epoch lines and timings of -v would be lost. A worker
    # that already has a handler (a dask worker's own) keeps it.
    ours = logging.getLogger("sessionbench")
    if not ours.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(handler)
    ours.setLevel(log_level)
    return run_job(job, progress=False, **kwargs)


def run_job(
    job: Job,
    *,
    results_dir: Path,
    device: str = "cpu",
    ties: str = "conservative",
    force: bool = False,
    progress: bool = True,
    quick: bool = False,
) -> JobOutcome:
    """Fit and evaluate one job, or reuse its finished result when its identity matches
    exactly. Errors of any kind are recorded, not raised (except KeyboardInterrupt)."""
    code_version()  # the code this process runs, read before any training
    where: tuple[Path, str, dict[str, Any]] | None = None
    try:
        recommender, split, identity, folder, stem = _slot(job, Path(results_dir), quick, device)
        where = (folder, stem, identity)
        path = folder / f"{stem}.json"
        checkpoint = inside(Path(results_dir), "checkpoints", *folder.relative_to(Path(results_dir) / "raw").parts, f"{stem}.pt")
        with locked(Path(results_dir), folder, stem):
            existing = None if force else read_result(path)
            if existing is not None and existing.get("identity") == identity:
                _remove_checkpoints(checkpoint)  # left by a run killed after writing its result
                return JobOutcome(job, "reused", path, _with_tuning(path, existing, job.tuning))
            if existing is not None:
                log.info("%s: not reusing %s, because %s", job.describe(), path.name, difference(existing.get("identity"), identity))
            if force:
                _remove_checkpoints(checkpoint)
            result = _fit_and_evaluate(job, recommender, split, identity, device, ties, progress, folder, stem, checkpoint)
            _atomic_write(path, json.dumps(result, indent=1, sort_keys=False).encode())
            failure_path(folder, stem).unlink(missing_ok=True)
            _remove_checkpoints(checkpoint)
            return JobOutcome(job, "ran", path, result)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - one failed job, even one calling sys.exit, must not stop the others
        log.debug("job failed", exc_info=True)
        return _record_failure(job, f"{type(e).__name__}: {e}", where, traceback.format_exc())


def _data_key(job: Job) -> tuple[str, str | None, str]:
    return job.dataset, job.data_dir, json.dumps(job.data_options, sort_keys=True)


def _slot(job: Job, results_dir: Path, quick: bool, device: str) -> tuple[Recommender, Split, dict[str, Any], Path, str]:
    """The job's recommender (constructed), split, identity, result folder and file stem."""
    recommender = _recommender(job, quick)
    split = load_dataset(job.dataset, job.data_dir, **job.data_options)
    identity, folder, stem = _place(job, recommender, split.name, split.fingerprint, results_dir, quick, device)
    return recommender, split, identity, folder, stem


def _recommender(job: Job, quick: bool) -> Recommender:
    cls = resolve(job.method)
    return cls(**{**(cls.quick_params if quick else {}), **job.params})


def _place(
    job: Job, recommender: Recommender, name: str, fingerprint: str, results_dir: Path, quick: bool, device: str
) -> tuple[dict[str, Any], Path, str]:
    """(identity, result folder, file stem) of ``job`` on the split ``name`` with ``fingerprint``.

    A model with a ``precision`` parameter adds what it resolves to on ``device``: "auto"
    trains in bf16 on one machine and in fp32 on another, and neither result stands for the
    other. The slot (file stem) stays the same, so the newer run replaces the older.
    """
    cls = type(recommender)
    params = recommender.get_params()
    identity = result_identity(name, fingerprint, cls.name or job.method, job.method, cls, params, job.seed, quick)
    if "precision" in params:
        identity["precision"] = resolve_precision(params["precision"], resolve_device(device))
    return identity, split_folder(results_dir, name, fingerprint), result_stem(identity)


def _slot_or_none(
    job: Job, split: tuple[str, str], results_dir: Path, quick: bool, device: str
) -> tuple[Path, str, dict[str, Any]] | None:
    """(folder, stem, identity) of a job on the split (name, fingerprint) already loaded, or
    None when it cannot be worked out (the job itself will then fail and say why)."""
    try:
        identity, folder, stem = _place(job, _recommender(job, quick), *split, results_dir, quick, device)
    except Exception:  # noqa: BLE001
        return None
    return folder, stem, identity


def _record_failure(job: Job, error: str, where: tuple[Path, str, dict[str, Any]] | None, trace: str = "") -> JobOutcome:
    """The failed outcome of ``job``, also written beside its results when its slot is known."""
    if where is not None:
        folder, stem, identity = where
        failure = {"job": job.__dict__, "identity": identity, "error": error, "traceback": trace}
        try:
            _atomic_write(failure_path(folder, stem), json.dumps(failure, indent=1, default=str).encode())
        except OSError as e:
            log.warning("could not record the failure of %s in %s (%s)", job.describe(), folder, e)
    return JobOutcome(job, "failed", error=error)


def _fit_and_evaluate(
    job: Job,
    recommender: Recommender,
    split: Split,
    identity: dict[str, Any],
    device: str,
    ties: str,
    progress: bool,
    folder: Path,
    stem: str,
    checkpoint: Path,
) -> dict[str, Any]:
    # a model whose fit takes a checkpoint saves its training there after every epoch, so that
    # running the same job again after an interruption resumes it
    resumable = "checkpoint" in inspect.signature(recommender.fit).parameters
    training = split.training_view()  # fit never sees the test sessions
    extra = {"checkpoint": checkpoint} if resumable else {}
    if recommender.get_params().get("selection") == TEST_BEST:
        # the authors' scripts' reading, labelled on every page: the fit is shown its test
        # metrics after every epoch (never the sessions themselves), and keeps the best epoch
        extra["monitor"] = lambda: evaluate(recommender, split.test, n_items=split.n_items, ties=ties, progress=False).metrics
    with PeakRSS() as peak:
        started = time.perf_counter()
        recommender.fit(training, seed=job.seed, device=device, progress=progress, **extra)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        evaluation = evaluate(recommender, split.test, n_items=split.n_items, ties=ties, progress=progress)
        evaluate_seconds = time.perf_counter() - started
    figure = _attention_figure(recommender, split, folder / f"{stem}-attention.png")
    ranks_name = f"{stem}.npz"
    buffer = _npz_bytes(greater=evaluation.greater, equal=evaluation.equal, prefix_lengths=evaluation.prefix_lengths)
    _atomic_write(folder / ranks_name, buffer)
    by_ties = {}
    for mode in TIE_MODES:
        ranks = ranks_from_counts(evaluation.greater, evaluation.equal, mode)
        by_ties[mode] = {"metrics": metrics(ranks, KS), "per_length": hits_by_length(ranks, evaluation.prefix_lengths)}
    cls = type(recommender)
    resumed = getattr(recommender, "resumed_", None)
    params = recommender.get_params()
    return {
        "identity": identity,
        "dataset": split.name,
        "dataset_info": _dataset_info(split),
        "method": identity["method"],
        "key": job.method,
        "class": identity["class"],
        "paper_row": cls.paper_row,
        "paper_tables": dict(cls.paper_tables),
        "suites": list(cls.suites),
        "variant": job.variant,
        "quick": identity["quick"],
        "params": params,
        "settings": _settings(cls, params, job.dataset),
        "params_hash": params_hash(params),
        "seed": job.seed,
        "ties": ties,
        "metrics": by_ties[ties]["metrics"],
        "per_length": by_ties[ties]["per_length"],
        "by_ties": by_ties,
        "n_test_cases": int(len(evaluation.greater)),
        # a resumed training's cost counts the epochs run before the interruption
        "fit_seconds": round(fit_seconds + (resumed or {}).get("seconds", 0.0), 3),
        "resumed": resumed,
        "epochs": _epochs(recommender),
        # the fair protocol's selection run (epochs chosen, validation curve), for a model that refits
        "selection": _json_copy(getattr(recommender, "selection_", None)),
        "fit_report": _fit_report(recommender),
        "tuning": _json_copy(job.tuning),
        "evaluate_seconds": round(evaluate_seconds, 3),
        "peak_rss_bytes": peak.peak,
        "process_peak_rss_bytes": peak.process_peak,
        "device": device_description(getattr(recommender, "device", device)),
        # what the training's scoring products ran in ("fp32", "bf16"), for a model that says
        "precision": getattr(recommender, "precision_", None),
        "versions": versions(),
        "code": code_version(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ranks_file": ranks_name,
        "ranks_sha256": hashlib.sha256(buffer).hexdigest(),
        "attention_figure": figure,
    }


def _settings(cls: type[Recommender], params: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The hyperparameters that differ from the class's defaults on ``dataset`` (what a row is
    labelled by)."""
    try:
        defaults = cls(**cls.defaults_for(dataset)).get_params()
    except Exception:  # noqa: BLE001 - a class without defaults for every parameter
        return dict(params)
    return {k: v for k, v in params.items() if defaults.get(k, object()) != v}


def _remove_checkpoints(checkpoint: Path) -> None:
    """Remove a job's checkpoint files (its later phases' too) once its result is safe."""
    for path in checkpoint_files(checkpoint):
        path.unlink(missing_ok=True)


def _fit_report(recommender: Recommender) -> dict[str, Any] | None:
    report = getattr(recommender, "fit_report_", None)
    return json.loads(json.dumps(report, default=str)) if report else None


def _json_copy(record: dict[str, Any] | None) -> dict[str, Any] | None:
    return json.loads(json.dumps(record, default=str)) if record else None


def _with_tuning(path: Path, result: dict[str, Any], tuning: dict[str, Any] | None) -> dict[str, Any]:
    """The reused ``result`` with this job's tuning record, rewritten in place (under the slot's
    lock) when it differs; metrics and ranks are untouched."""
    record = _json_copy(tuning)
    if result.get("tuning") == record:
        return result
    result = {**result, "tuning": record}
    _atomic_write(path, json.dumps(result, indent=1, sort_keys=False).encode())
    return result


def _epochs(recommender: Recommender) -> list[dict[str, Any]] | None:
    """The training's epoch log (loss, seconds, validation score), if the model keeps one in
    ``history_`` (as :func:`sessionbench.training.train_epochs` returns it)."""
    history = getattr(recommender, "history_", None)
    if history is None:
        return None
    return [asdict(entry) if is_dataclass(entry) else dict(entry) for entry in history]


def _attention_figure(recommender: Recommender, split: Split, path: Path) -> str | None:
    """Draw the model's attention figure if it has one (NARM's Figure 6); the file name or None."""
    if type(recommender).attention_figure is Recommender.attention_figure:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp.png")
    os.close(fd)
    tmp = Path(name)
    try:
        recommender.attention_figure(split, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.name


def _dataset_info(split: Split) -> dict[str, Any]:
    keep = ("dataset", "source", "files", "form", "order", "order_declared", "protocol", "notes", "warnings", "size", "seed")
    info = {k: split.info[k] for k in keep if k in split.info}
    return {"stats": split.stats(), "n_items": split.n_items, "fingerprint": split.fingerprint} | info


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))
