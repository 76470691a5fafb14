"""Plans (dataset x method x hyperparameters x seed) jobs, runs each once, stores raw results.

One job fits a recommender and evaluates it on every test prefix. The harness, never the
model, times ``fit`` and evaluation and measures peak memory. A job's result is a JSON file
named by its key, ``results/raw/<dataset>/<method>-<params hash>-seed<k>.json``, with the
per-case counts beside it (``.npz``); an existing file means "done" unless ``force``. Files
are written under temporary names and renamed when complete, so an interrupted run leaves the
finished results intact and nothing half-written. A failing job records its error in
``<key>.failed.json`` and the other jobs go on.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from sessionbench.data import Split, load_dataset
from sessionbench.evaluation import KS, TIE_MODES, evaluate, hits_by_length, metrics, ranks_from_counts
from sessionbench.files import atomic_write
from sessionbench.registry import resolve
from sessionbench.recommender import Recommender

__all__ = ["Job", "JobOutcome", "PeakRSS", "params_hash", "plan", "process_peak_rss", "result_stem", "run_job", "run_jobs", "versions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One run: a method with hyperparameters on a dataset, with one seed.

    Attributes:
        dataset: Dataset name as :func:`~sessionbench.data.load_dataset` takes it.
        method: Registered name or ``module:Class``.
        params: Hyperparameters that differ from the class defaults.
        seed: Seed passed to ``fit``.
        data_dir: Where the dataset's files are (None: the default lookup).
        data_options: Extra options for ``load_dataset`` (e.g. ``order``).
    """

    dataset: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    data_dir: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None  # the suite whose hyperparameter settings produced `params`

    def describe(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        return f"{self.dataset} {self.method}{extra} seed{self.seed}"


@dataclass
class JobOutcome:
    """What happened to a job: "ran", "reused" or "failed", with its result file."""

    job: Job
    status: str
    path: Path | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def summary(self) -> str:
        if self.status == "failed":
            return f"[failed] {self.job.describe()}: {self.error}"
        r = self.result or {}
        m = r.get("metrics", {})
        return (
            f"[{self.status}] {self.job.describe()}: Recall@20 {100 * m.get('recall@20', float('nan')):.2f} "
            f"MRR@20 {100 * m.get('mrr@20', float('nan')):.2f} (fit {r.get('fit_seconds', 0):.1f} s, "
            f"evaluate {r.get('evaluate_seconds', 0):.1f} s, peak {r.get('peak_rss_bytes', 0) / 2**30:.2f} GiB)"
        )


def plan(
    datasets: Iterable[str],
    methods: Iterable[str],
    seeds: Iterable[int],
    params: dict[str, dict[str, Any]] | None = None,
    data_dir: str | None = None,
    data_options: dict[str, Any] | None = None,
    suite: str | None = None,
) -> list[Job]:
    """Every (dataset, method, hyperparameter setting, seed) combination.

    A method's settings are its defaults plus those its class lists in ``suite_params`` for the
    suite (e.g. NARM at hidden size 50 and 100 for the ablations; the ``paper`` suite is main
    and ablations together); ``params`` overrides apply on top. A setting that differs from the
    defaults is marked with its suite (``Job.variant``), which keeps it out of Table 3. So is one
    that moves a hyperparameter a suite sweeps away from the class default, even by ``params``
    (``narm.hidden_size=50`` is Table 4's d = 50 cell, not the paper's NARM of Table 3).
    """
    params = params or {}
    suites = ("main", "ablations") if suite == "paper" else (suite or "main",)
    jobs = []
    for method in methods:
        cls = resolve(method)
        overrides = params.get(method, {})
        defaults, paper_setting = cls(**overrides).get_params(), cls().get_params()
        swept = {key: name for name, options in cls.suite_params.items() for option in options for key in option}
        settings: dict[str, tuple[dict[str, Any], str | None]] = {}
        for name in suites:
            for setting in cls.suite_params.get(name) or [{}]:
                merged = {**setting, **overrides}
                full = cls(**merged).get_params()
                key = json.dumps(full, sort_keys=True, default=str)
                moved = [swept[k] for k in swept if full[k] != paper_setting[k]]
                settings.setdefault(key, (merged, name if full != defaults else (moved[0] if moved else None)))
        for merged, variant in settings.values():
            jobs += [Job(d, method, merged, s, data_dir, dict(data_options or {}), variant) for d in datasets for s in seeds]
    return jobs


def params_hash(params: dict[str, Any]) -> str:
    """Short stable hash of the complete hyperparameters (defaults included)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]


def result_stem(method: str, params: dict[str, Any], seed: int) -> str:
    """File name (without suffix) of a run: ``<method>-<params hash>-seed<k>``."""
    safe = method.replace(":", ".").replace("/", ".")
    return f"{safe}-{params_hash(params)}-seed{seed}"


def _method_name(target: str, cls: type[Recommender]) -> str:
    return cls.name or target


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
    """Run the jobs (in parallel processes when ``n_jobs > 1``) and return their outcomes.

    Datasets are loaded once here first, so that parallel workers read them from the cache.
    """
    for dataset, data_dir, options in {(j.dataset, j.data_dir, json.dumps(j.data_options, sort_keys=True)) for j in jobs}:
        load_dataset(dataset, data_dir, **json.loads(options))
    kwargs = dict(results_dir=results_dir, device=device, ties=ties, force=force, quick=quick)
    if n_jobs == 1 or len(jobs) <= 1:
        outcomes = []
        for job in jobs:
            outcome = run_job(job, progress=progress, **kwargs)
            log.info("%s", outcome.summary())
            outcomes.append(outcome)
        return outcomes
    from joblib import Parallel, delayed, parallel_config

    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    log_level = logging.getLogger("sessionbench").getEffectiveLevel()
    # dask and ray take their workers' threads from the cluster's own configuration
    with parallel_config(backend=backend or "loky", n_jobs=n_jobs if backend in (None, "loky") else -1):
        results: Iterator[JobOutcome] = Parallel(return_as="generator")(
            delayed(_run_in_worker)(job, threads, log_level, kwargs) for job in jobs
        )
        outcomes = []
        for outcome in results:  # in submission order
            log.info("%s", outcome.summary())
            outcomes.append(outcome)
    return outcomes


def _run_in_worker(job: Job, threads: int, log_level: int, kwargs: dict[str, Any]) -> JobOutcome:
    import torch

    torch.set_num_threads(threads)
    # A worker is a fresh process with no logging configured, where Python's last-resort handler
    # drops everything below WARNING: the epoch lines and timings of -v would be lost. A worker
    # that already has a handler (a reused loky worker, a dask worker's own) keeps it.
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
    """Fit and evaluate one job, or reuse its finished result. Errors are recorded, not raised
    (except KeyboardInterrupt)."""
    stem_dir: Path | None = None
    stem = ""
    _git_commit()  # the commit this process runs, read before any training
    try:
        cls = resolve(job.method)
        params = {**(cls.quick_params if quick else {}), **job.params}
        recommender = cls(**params)
        split = load_dataset(job.dataset, job.data_dir, **job.data_options)
        full_params = recommender.get_params()
        method = _method_name(job.method, cls)
        stem_dir = results_dir / "raw" / split.name
        stem = result_stem(method, full_params, job.seed)
        path = stem_dir / f"{stem}.json"
        checkpoint = results_dir / "checkpoints" / split.name / f"{stem}.pt"
        if path.exists() and not force:
            checkpoint.unlink(missing_ok=True)  # left by a run killed after writing its result
            return JobOutcome(job, "reused", path, json.loads(path.read_text()))
        if force:
            checkpoint.unlink(missing_ok=True)
        result = _fit_and_evaluate(job, recommender, split, method, device, ties, progress, stem_dir, stem, checkpoint)
        _atomic_write(path, json.dumps(result, indent=1, sort_keys=False).encode())
        (stem_dir / f"{stem}.failed.json").unlink(missing_ok=True)
        checkpoint.unlink(missing_ok=True)
        return JobOutcome(job, "ran", path, result)
    except Exception as e:  # one failed job must not stop the others
        message = f"{type(e).__name__}: {e}"
        if stem_dir is not None:
            failure = {"job": job.__dict__, "error": message, "traceback": traceback.format_exc()}
            try:
                _atomic_write(stem_dir / f"{stem}.failed.json", json.dumps(failure, indent=1, default=str).encode())
            except OSError:
                pass
        log.debug("job failed", exc_info=True)
        return JobOutcome(job, "failed", error=message)


def _fit_and_evaluate(
    job: Job,
    recommender: Recommender,
    split: Split,
    method: str,
    device: str,
    ties: str,
    progress: bool,
    stem_dir: Path,
    stem: str,
    checkpoint: Path,
) -> dict[str, Any]:
    # a model whose fit takes a checkpoint saves its training there after every epoch, so that
    # running the same job again after an interruption resumes it
    resumable = "checkpoint" in inspect.signature(recommender.fit).parameters
    with PeakRSS() as peak:
        started = time.perf_counter()
        if resumable:
            recommender.fit(split, seed=job.seed, device=device, progress=progress, checkpoint=checkpoint)
        else:
            recommender.fit(split, seed=job.seed, device=device, progress=progress)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        evaluation = evaluate(recommender, split.test, n_items=split.n_items, ties=ties, progress=progress)
        evaluate_seconds = time.perf_counter() - started
    figure = _attention_figure(recommender, split, stem_dir / f"{stem}-attention.png")
    ranks_name = f"{stem}.npz"
    buffer = _npz_bytes(greater=evaluation.greater, equal=evaluation.equal, prefix_lengths=evaluation.prefix_lengths)
    _atomic_write(stem_dir / ranks_name, buffer)
    by_ties = {}
    for mode in TIE_MODES:
        ranks = ranks_from_counts(evaluation.greater, evaluation.equal, mode)
        by_ties[mode] = {"metrics": metrics(ranks, KS), "per_length": hits_by_length(ranks, evaluation.prefix_lengths)}
    cls = type(recommender)
    resumed = getattr(recommender, "resumed_", None)
    return {
        "dataset": split.name,
        "dataset_info": _dataset_info(split),
        "method": method,
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "paper_row": cls.paper_row,
        "paper_tables": dict(cls.paper_tables),
        "suites": list(cls.suites),
        "variant": job.variant,
        "params": recommender.get_params(),
        "params_hash": params_hash(recommender.get_params()),
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
        "evaluate_seconds": round(evaluate_seconds, 3),
        "peak_rss_bytes": peak.peak,
        "process_peak_rss_bytes": peak.process_peak,
        "device": _device_description(getattr(recommender, "device", device)),
        "versions": versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ranks_file": ranks_name,
        "attention_figure": figure,
    }


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
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        recommender.attention_figure(split, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.name


def _dataset_info(split: Split) -> dict[str, Any]:
    keep = ("dataset", "source", "form", "order", "order_declared", "protocol", "notes", "size", "seed")
    return {"stats": split.stats(), "n_items": split.n_items} | {k: split.info[k] for k in keep if k in split.info}


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms,
    ``peak``), and the process's lifetime peak at its end (``process_peak``, see
    :func:`process_peak_rss`); both in bytes.

    Example::

        with PeakRSS() as memory:
            model.fit(split, seed=0)
        print(memory.peak / 2**30, "GiB")
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.process_peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.process_peak = process_peak_rss()


def process_peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    Linux's ``VmHWM`` belongs to the process's own address space, whereas ``ru_maxrss`` keeps
    the peak of the address space before ``exec`` — the forked copy of a large parent — and
    would charge a worker with its parent's memory.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _device_description(device: str) -> str:
    """Where a run's costs were measured, e.g. "cpu (AMD EPYC, AVX512, 2 torch threads, 2 cores)".

    The CPU's instruction set is named because the page groups costs by this text, and two
    machines that both report "AMD EPYC" with 2 cores trained a NARM epoch on DIGINETICA in
    about 290 s (AVX2) and 105 s (AVX-512).
    """
    import torch

    if str(device).startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name()})"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu ({_cpu_model()}, {capability}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"


def _cpu_model() -> str:
    """The CPU's model name (Linux reports it in /proc/cpuinfo; ``platform.processor()`` is
    often empty there), else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Versions of Python, the libraries that compute results, and the code's git commit."""
    import importlib.metadata

    out = {"python": platform.python_version()}
    for lib in ("sessionbench", "numpy", "scipy", "pandas", "torch", "implicit"):
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    out["commit"] = _git_commit()
    return out


@functools.cache
def _git_commit() -> str:
    """The commit of the code this process runs: read once, at the first run, because the
    working tree may move on while a training of hours runs from modules already imported."""
    return _read_git_commit()


def _read_git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if sha.returncode != 0:
        return "unknown"
    return sha.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
