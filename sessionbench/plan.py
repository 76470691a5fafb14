"""What to run: jobs of (dataset, method, hyperparameter setting, seed), and what happened to
each. :mod:`sessionbench.harness` runs them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessionbench.registry import resolve

__all__ = ["Job", "JobOutcome", "Tuned", "params_hash", "plan"]


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
        variant: The suite whose hyperparameter settings produced ``params``, if not the main one.
        tuning: How ``params`` were chosen when a tuning chose them (the params file, its
            sha256, trials, metric, validation value), recorded in the result; else None.
    """

    dataset: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    data_dir: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    tuning: dict[str, Any] | None = None

    def describe(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        tuned = f" (tuned, {self.tuning.get('n_trials')} trials)" if self.tuning else ""
        return f"{self.dataset} {self.method}{extra}{tuned} seed{self.seed}"


@dataclass(frozen=True)
class Tuned:
    """A method's tuned setting for :func:`plan`: ``params`` (every hyperparameter, as the
    params file holds them) and ``record`` (what the result records as ``"tuning"``)."""

    params: dict[str, Any]
    record: dict[str, Any]


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
    tuned: dict[str, Tuned] | None = None,
) -> list[Job]:
    """Every (dataset, method, hyperparameter setting, seed) combination.

    A method's settings are its defaults plus those its class lists in ``suite_params`` for the
    suite (e.g. NARM at hidden size 50 and 100 for the ablations; the ``paper`` suite is main
    and ablations together); ``params`` overrides apply on top. A setting that differs from the
    defaults is marked with its suite (``Job.variant``), which keeps it out of Table 3. So is one
    that moves a hyperparameter a suite sweeps away from the class default, even by ``params``
    (``narm.hidden_size=50`` is Table 4's d = 50 cell, not the paper's NARM of Table 3).

    ``tuned`` (by method, for the one dataset it was tuned on) replaces a method's defaults
    where a suite runs them (it lists no settings for the method): that job runs the tuned
    setting (with ``params`` on top, which the caller has checked agree with it), counts as the
    method's own setting (Table 3's, whatever it moved) and carries the tuning record. The
    settings a suite lists (Table 4's hidden sizes) keep the paper's defaults around them.

    A class's :meth:`~sessionbench.recommender.Recommender.defaults_for` a dataset replaces its
    defaults on that dataset, below everything else (``gru4rec-tuned`` takes the official
    YOOCHOOSE parameter file on YOOCHOOSE).
    """
    params = params or {}
    tuned = tuned or {}
    suites = ("main", "ablations") if suite == "paper" else (suite or "main",)
    datasets = list(datasets)
    jobs = []
    for method in methods:
        cls = resolve(method)
        by_defaults: dict[str, list[str]] = {}  # datasets that share the class's defaults
        for d in datasets:
            by_defaults.setdefault(json.dumps(cls.defaults_for(d), sort_keys=True, default=str), []).append(d)
        for on in by_defaults.values():
            settings = _settings(cls, cls.defaults_for(on[0]), params.get(method, {}), tuned.get(method), suites)
            for merged, variant, is_own in settings:
                own = tuned.get(method)
                record = own.record if is_own and own is not None else None
                jobs += [Job(d, method, merged, s, data_dir, dict(data_options or {}), variant, record) for d in on for s in seeds]
    return jobs


def _settings(
    cls: type, dataset_defaults: dict[str, Any], overrides: dict[str, Any], own: Tuned | None, suites: tuple[str, ...]
) -> list[tuple[dict[str, Any], str | None, bool]]:
    """(hyperparameters, variant, is the method's own setting) of each distinct setting the
    suites run of ``cls``, on datasets whose defaults are ``dataset_defaults``."""
    paper_setting = cls(**dataset_defaults).get_params()
    base = {**dataset_defaults, **({k: v for k, v in own.params.items() if paper_setting.get(k) != v} if own else {})}
    own_setting = cls(**base).get_params()  # the method's own: the paper's, or the tuned one
    defaults = cls(**{**base, **overrides}).get_params()
    swept = {key: name for name, options in cls.suite_params.items() for option in options for key in option}
    settings: dict[str, tuple[dict[str, Any], str | None, bool]] = {}
    for name in suites:
        for setting in cls.suite_params.get(name) or [{}]:
            is_own = own is not None and not setting  # a suite that lists no settings runs the own one
            merged = {**dataset_defaults, **setting, **(base if is_own else {}), **overrides}
            full = cls(**merged).get_params()
            key = json.dumps(full, sort_keys=True, default=str)
            moved = [swept[k] for k in swept if full[k] != (own_setting if is_own else paper_setting)[k]]
            settings.setdefault(key, (merged, name if full != defaults else (moved[0] if moved else None), is_own))
    return list(settings.values())


def params_hash(params: dict[str, Any]) -> str:
    """Short stable hash of the complete hyperparameters (defaults included)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
