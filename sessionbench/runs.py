"""The finished runs of one split, read back safely and grouped for the tables.

Only the results of one split folder (:func:`sessionbench.store.split_folder`) are read, so a
page never mixes data. A damaged result is left out with a warning naming it (the next run of
its job, which holds the result's lock, sets it aside and runs it again); smoke runs
(``--quick``) are kept apart from full runs. Runs group by method, settings and code version;
a group is labelled by its method, and by the hyperparameters that differ from the method's
defaults when it has any (``narm (hidden_size=50)``), never by a bare hash; a group whose
setting a tuning chose is labelled as tuned, with its budget (``sknn (tuned, 50 trials)``);
groups that still read the same get their class, then their code version, then their settings.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sessionbench import paper
from sessionbench.evaluation import HEADLINE_K, ranks_from_counts
from sessionbench.store import read_result, split_folders

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Group", "Runs", "label_groups", "load_results", "load_runs", "markdown_text", "percent_cell", "resolve_split_folder"]

log = logging.getLogger(__name__)

_FIGURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png")


def markdown_text(text: Any) -> str:
    """``text`` safe inside a markdown table cell or line: no line breaks, pipes escaped,
    HTML's angle brackets as entities."""
    flat = " ".join(str(text).split())
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def percent_cell(values: Sequence[float]) -> str:
    """A page cell of fractions as percentages: the value alone for one run, mean ± sample
    standard deviation for several, empty for none."""
    values = [100 * v for v in values]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


@dataclass
class Group:
    """The runs of one method with one set of hyperparameters (one per seed)."""

    method: str
    key: str
    paper_row: str | None
    runs: list[dict[str, Any]]
    folder: Path

    def values(self, metric: str, ties: str) -> list[float]:
        return [r["by_ties"][ties]["metrics"][metric] for r in self.runs]

    def mean(self, metric: str, ties: str) -> float:
        return statistics.fmean(self.values(metric, ties))

    def cell(self, metric: str, ties: str) -> str:
        return percent_cell(self.values(metric, ties))

    def cost(self, key: str) -> float:
        return statistics.fmean(r[key] for r in self.runs)

    def hits_by_length(self, ties: str) -> dict[str, float]:
        per_run = [r["by_ties"][ties]["per_length"] for r in self.runs]
        return {b: statistics.fmean(p[b]["hits"] for p in per_run) for b in per_run[0]}

    def per_case(self, ties: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-case hit@20 and reciprocal rank@20, averaged over seeds: float64[n_cases] each."""
        hits, rr = [], []
        for run in self.runs:
            with np.load(self.folder / Path(run["ranks_file"]).name, allow_pickle=False) as z:
                ranks = ranks_from_counts(z["greater"], z["equal"], ties)
            hit = ranks <= HEADLINE_K
            hits.append(hit)
            rr.append(np.where(hit, 1.0 / ranks, 0.0))
        return np.mean(hits, axis=0), np.mean(rr, axis=0)

    def case_sessions(self) -> np.ndarray:
        """The test session of each case, int64[n_cases], numbered from 0 in stored order.

        Cases are stored session by session, shortest prefix first (prefix lengths 1, 2, ...,
        n - 1 for a session of n clicks), so each prefix of length 1 starts the next session:
        ``[1, 2, 3, 1, 1, 2]`` gives ``[0, 0, 0, 1, 2, 2]``. The prefix lengths are the first
        run's; every run of the group must have the same.

        Raises:
            ValueError: a run's prefix lengths differ from the first run's, or they are not in
                that order (the first is not 1, or one is neither 1 nor the one before plus 1);
                the message names the ranks file.
        """
        first, *others = (self.folder / Path(run["ranks_file"]).name for run in self.runs)
        lengths = self._stored_prefix_lengths(first)
        for path in others:
            if not np.array_equal(self._stored_prefix_lengths(path), lengths):
                raise ValueError(f"{path}: its prefix_lengths differ from those of {first} (the same method's first run): "
                                 "the runs were not evaluated on the same test cases")
        return np.cumsum(lengths == 1, dtype=np.int64) - 1

    @staticmethod
    def _stored_prefix_lengths(path: Path) -> np.ndarray:
        """The prefix lengths of a ranks file, checked to be in the order cases are stored in."""
        with np.load(path, allow_pickle=False) as z:
            lengths = np.asarray(z["prefix_lengths"], dtype=np.int64)
        if len(lengths) and lengths[0] != 1:
            raise ValueError(f"{path}: prefix_lengths start at {lengths[0]}, not 1: the cases are not stored "
                             "session by session, shortest prefix first")
        wrong = np.flatnonzero((lengths[1:] != 1) & (lengths[1:] != lengths[:-1] + 1)) + 1
        if len(wrong):
            i = int(wrong[0])
            raise ValueError(f"{path}: prefix_lengths go from {lengths[i - 1]} to {lengths[i]} at case {i}: the cases are not "
                             "stored session by session, shortest prefix first (1, 2, ..., n - 1 for each session)")
        return lengths

    @property
    def in_table3(self) -> bool:
        """Table 3 shows the main methods at their own settings, not ablation variants, and
        never a run selected on the test set."""
        return not self.test_selected and all(r.get("variant") is None and "main" in r.get("suites", ["main"]) for r in self.runs)

    @property
    def test_selected(self) -> bool:
        """Whether the runs chose their epochs on the test set (``selection="test-best"``, the
        authors' scripts' reading): shown apart, labelled, never compared as ours."""
        return any(r.get("params", {}).get("selection") == "test-best" for r in self.runs)

    @property
    def hidden_size(self) -> Any:
        return self.runs[0]["params"].get("hidden_size")

    @property
    def settings(self) -> dict[str, Any]:
        """The hyperparameters that differ from the method's defaults."""
        return dict(self.runs[0].get("settings") or {})

    @property
    def tuning(self) -> dict[str, Any] | None:
        """How a tuning chose this setting (params file, sha256, trials, metric, validation
        value), when one did; None otherwise."""
        record = self.runs[0].get("tuning")
        return dict(record) if isinstance(record, dict) else None

    @property
    def code(self) -> str:
        """The code version the group's runs came from."""
        return str((self.runs[0].get("identity") or {}).get("code", "?"))

    @property
    def class_name(self) -> str:
        return str(self.runs[0].get("class", "?"))

    @property
    def attention_figure(self) -> str | None:
        """The first run's attention figure, if it names a PNG file in this folder (a result
        file cannot point the page, or ``--attention-figure``, anywhere else)."""
        name = self.runs[0].get("attention_figure")
        if not name:
            return None
        if not isinstance(name, str) or not _FIGURE_NAME.fullmatch(name) or not (self.folder / name).is_file():
            log.warning("%s: ignoring attention_figure %r: not a PNG file of %s", self.method, name, self.folder)
            return None
        return name


@dataclass
class Runs:
    """One split folder's runs: full runs in groups, smoke runs apart, recorded failures."""

    folder: Path | None
    groups: list[Group]
    quick: list[Group]
    failures: list[dict[str, Any]]


def resolve_split_folder(results_dir: Path, dataset: str, fingerprint: str | None = None) -> Path | None:
    """The folder of the split ``dataset`` with ``fingerprint``; without one, the only split
    of that name that has results.

    Raises:
        ValueError: several splits of that name have results and no fingerprint says which
            (the message lists them).
    """
    folders = split_folders(results_dir, dataset)
    if fingerprint is not None:
        return next((f for f in folders if fingerprint.startswith(f.name)), None)
    if len(folders) > 1:
        listed = ", ".join(f.name for f in folders)
        raise ValueError(f"results of {len(folders)} different {dataset!r} splits are stored ({listed}); "
                         "give the data (--data-dir, --data-option) so the page can name the one it describes")
    return folders[0] if folders else None


def load_runs(folder: Path | None) -> Runs:
    """Finished runs of ``folder`` grouped by (method, hyperparameters), and its failures."""
    if folder is None or not folder.is_dir():
        return Runs(folder, [], [], [])
    runs, failures = [], []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".failed.json"):
            try:
                failures.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                log.warning("ignoring the unreadable failure record %s (%s)", path, e)
            continue
        result = read_result(path, set_damaged_aside=False)  # outside the slot's lock: never move files
        if result is not None:
            runs.append(result)
    groups: dict[str, Group] = {}
    for run in runs:
        identity = run.get("identity") or {}
        slot = json.dumps(
            [run["method"], identity.get("key"), run.get("class"), run["params"], bool(run.get("quick")), identity.get("code")],
            sort_keys=True,
        )
        group = groups.setdefault(slot, Group(run["method"], slot, run.get("paper_row"), [], folder))
        group.runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: r["seed"])
    order = {row: i for i, row in enumerate(paper.ROWS + paper.EXTRA_ROWS)}
    # the paper's order, then by method; a method's own settings before its tuned one
    ordered = sorted(groups.values(), key=lambda g: (order.get(g.paper_row or "", len(order)), g.method, g.tuning is not None, g.key))
    quick = [g for g in ordered if g.runs[0].get("quick")]
    return Runs(folder, [g for g in ordered if not g.runs[0].get("quick")], quick, failures)


def label_groups(groups: Sequence[Group]) -> dict[int, str]:
    """A label per group (by ``id``), markdown-safe: the method; with its non-default settings
    in brackets when it has any, or "tuned" and the trials when a tuning chose them; with its
    class when groups would still read the same (a plugin reusing a built-in's name), then with
    its code version (runs of one setting made by different code are never averaged into one
    cell), then with its settings (two tunings that chose differently)."""
    labels: dict[int, str] = {}
    for g in groups:
        labels[id(g)] = f"{g.method} ({_tuned_text(g.tuning)})" if g.tuning else (
            f"{g.method} ({_settings_text(g)})" if g.settings else g.method)
    for tag in (lambda g: g.class_name, lambda g: f"code {g.code}", lambda g: _settings_text(g) or "defaults"):
        sharing: dict[str, list[Group]] = {}
        for g in groups:
            sharing.setdefault(labels[id(g)], []).append(g)
        for same in sharing.values():
            if len({tag(g) for g in same}) > 1:  # the tag tells them apart
                for g in same:
                    labels[id(g)] = f"{labels[id(g)]} [{tag(g)}]"
    return {k: markdown_text(v) for k, v in labels.items()}


def _settings_text(group: Group) -> str:
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(group.settings.items()))


def _tuned_text(record: dict[str, Any]) -> str:
    trials = record.get("n_trials")
    return f"tuned, {trials} trials" if isinstance(trials, int) else "tuned"


def load_results(results_dir: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """Every finished run under ``results_dir`` as a DataFrame, one row per run.

    Args:
        results_dir: A results directory (``--results-dir``).
        dataset: A split name (``diginetica``, ``synthetic-seed1``, ...); None: every split.

    Returns:
        Columns ``dataset, fingerprint, method, key, class, settings`` (the hyperparameters
        that differ from the defaults, a dict), ``params`` (all of them), ``seed, quick``, one
        column per tie mode and metric (``conservative/recall@20``, ``standard/mrr@10``, ...),
        ``tuning`` (how a tuning chose the settings, a dict, or None),
        ``n_test_cases, fit_seconds, evaluate_seconds, peak_rss_bytes, device, code`` (the code
        version a reuse matches), ``commit, dirty, finished_at``. Damaged results are left out
        with a warning, as on the pages.
    """
    import pandas as pd

    base = Path(results_dir) / "raw"
    names = [dataset] if dataset is not None else sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    rows = []
    for name in names:
        for folder in split_folders(Path(results_dir), name):
            for path in sorted(folder.glob("*.json")):
                if path.name.endswith(".failed.json"):
                    continue
                run = read_result(path, set_damaged_aside=False)
                if run is not None:
                    rows.append(_row(run, folder))
    columns = ["dataset", "fingerprint", "method", "key", "class", "settings", "params", "seed", "quick"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def _row(run: dict[str, Any], folder: Path) -> dict[str, Any]:
    identity = run.get("identity") or {}
    code = run.get("code") or {}
    row = {
        "dataset": run.get("dataset"),
        "fingerprint": run.get("dataset_info", {}).get("fingerprint", folder.name),
        "method": run["method"],
        "key": identity.get("key", run.get("key")),
        "class": run.get("class"),
        "settings": dict(run.get("settings") or {}),
        "params": dict(run["params"]),
        "seed": run["seed"],
        "quick": bool(run.get("quick")),
    }
    for mode, by in run["by_ties"].items():
        row |= {f"{mode}/{metric}": value for metric, value in by["metrics"].items()}
    row["tuning"] = run.get("tuning")
    row |= {k: run.get(k) for k in ("n_test_cases", "fit_seconds", "evaluate_seconds", "peak_rss_bytes", "device", "precision")}
    row |= {"code": identity.get("code"), "commit": code.get("commit"), "dirty": code.get("dirty"), "finished_at": run.get("finished_at")}
    return row
