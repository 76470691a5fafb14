"""Renders the paper's tables as markdown, from the raw result files alone.

Nothing here trains or reads a dataset: ``results/raw/<dataset>/*.json`` holds everything
(metrics under every tie mode, per-length hits, split statistics, costs, versions), so
``--tables-only`` regenerates byte-identical markdown. Numbers are percentages; where several
seeds ran, cells show mean ± sample standard deviation.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from sessionbench import paper

__all__ = ["Group", "load_groups", "render", "write_tables"]

_STAT_COLUMNS = (
    ("clicks", "clicks"),
    ("train_sessions", "train seqs"),
    ("test_sessions", "test seqs"),
    ("items", "items"),
    ("avg_length", "avg.length"),
)
_EXTRA_ROWS = ("GRU4Rec (tuned)",)


@dataclass
class Group:
    """The runs of one method with one set of hyperparameters (one per seed)."""

    method: str
    params_hash: str
    paper_row: str | None
    runs: list[dict[str, Any]]

    def values(self, metric: str, ties: str) -> list[float]:
        return [r["by_ties"][ties]["metrics"][metric] for r in self.runs]

    def mean(self, metric: str, ties: str) -> float:
        return statistics.fmean(self.values(metric, ties))

    def cell(self, metric: str, ties: str) -> str:
        values = [100 * v for v in self.values(metric, ties)]
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"

    def cost(self, key: str) -> float:
        return statistics.fmean(r[key] for r in self.runs)

    def hits_by_length(self, ties: str) -> dict[str, float]:
        per_run = [r["by_ties"][ties]["per_length"] for r in self.runs]
        return {b: statistics.fmean(p[b]["hits"] for p in per_run) for b in per_run[0]}


def load_groups(results_dir: Path, dataset: str) -> tuple[list[Group], list[dict[str, Any]]]:
    """Finished runs grouped by (method, hyperparameters), and the recorded failures."""
    folder = Path(results_dir) / "raw" / dataset
    runs, failures = [], []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        (failures if path.name.endswith(".failed.json") else runs).append(data)
    groups: dict[tuple[str, str], Group] = {}
    for run in runs:
        key = (run["method"], run["params_hash"])
        groups.setdefault(key, Group(run["method"], run["params_hash"], run.get("paper_row"), [])).runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: r["seed"])
    order = {row: i for i, row in enumerate(paper.ROWS + _EXTRA_ROWS)}
    ordered = sorted(groups.values(), key=lambda g: (order.get(g.paper_row or "", len(order)), g.method, g.params_hash))
    return ordered, failures


def render(results_dir: Path, dataset: str, ties: str = "conservative") -> str:
    """The markdown page of one dataset."""
    groups, failures = load_groups(results_dir, dataset)
    if not groups:
        return f"# {dataset}\n\nNo finished runs in {Path(results_dir) / 'raw' / dataset}.\n"
    info = groups[0].runs[-1]["dataset_info"]
    reference = paper.reference_for(info.get("dataset", dataset), info.get("order"))
    labels = _labels(groups)
    parts = [
        _header(dataset, groups, info, ties, reference),
        _table1(info.get("dataset", dataset), info),
        _table3(groups, labels, ties, reference),
        _table5(groups, labels, ties),
        _failures(failures),
    ]
    return "\n".join(p for p in parts if p)


def write_tables(results_dir: Path, dataset: str, ties: str = "conservative") -> Path:
    """Render and write ``<results_dir>/<dataset>.md``."""
    path = Path(results_dir) / f"{dataset}.md"
    path.write_text(render(results_dir, dataset, ties))
    return path


def _labels(groups: Sequence[Group]) -> dict[int, str]:
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.method] = counts.get(g.method, 0) + 1
    return {id(g): g.method if counts[g.method] == 1 else f"{g.method} ({g.params_hash})" for g in groups}


def _header(dataset: str, groups: Sequence[Group], info: dict[str, Any], ties: str, reference: paper.Reference | None) -> str:
    commits = sorted({r["versions"].get("commit", "unknown") for g in groups for r in g.runs})
    protocol = info.get("protocol")
    if isinstance(protocol, dict):
        protocol = ", ".join(f"{k}={v}" for k, v in protocol.items())
    lines = [
        f"# {dataset}: sessionbench results",
        "",
        f"- Data: {info.get('form')} from {_short_source(info.get('source'))}; clicks within a session in "
        f"**{info.get('order')}** order{' (as the files were made)' if info.get('order_declared') else ''}.",
        f"- Protocol: {protocol}.",
        f"- Evaluation: every prefix of every test session is a case; its target is ranked among all "
        f"{info.get('n_items'):,} items (full ranking, no sampling). Ties: **{ties}** "
        "(conservative: items scoring the same as the target rank ahead of it).",
        f"- Code: commit {', '.join(commits)}.",
        f"- Reference column: {reference.source}." if reference else "- Reference column: none published for this dataset.",
    ]
    for note in info.get("notes", []):
        lines.append(f"- Note: {note}.")
    return "\n".join(lines) + "\n"


def _short_source(source: str | None) -> str:
    if not source:
        return "?"
    return source.replace(str(Path.home()), "~")


def _table1(dataset: str, info: dict[str, Any]) -> str:
    ours = info["stats"]
    rows = [["ours", *(_number(ours[k]) for k, _ in _STAT_COLUMNS)]]
    published = paper.TABLE1.get(dataset)
    if published:
        rows.append(["paper", *(_number(published[k]) for k, _ in _STAT_COLUMNS)])
    table = tabulate(rows, headers=["", *(h for _, h in _STAT_COLUMNS)], tablefmt="github", disable_numparse=True)
    note = (
        "\n\nSequences are counted after prefix expansion; items are the distinct items of the training data used; "
        "avg.length is the mean of (prefix length + 1) over all sequences, truncated to two decimals."
    )
    return f"## Table 1: statistics of the split\n\n{table}{note}\n"


def _number(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) or float(x).is_integer() else f"{x:.2f}"


def _table3(groups: Sequence[Group], labels: dict[int, str], ties: str, reference: paper.Reference | None) -> str:
    rows = []
    for g in groups:
        ref = reference.rows.get(g.paper_row or "") if reference else None
        recall, mrr = 100 * g.mean("recall@20", ties), 100 * g.mean("mrr@20", ties)
        rows.append(
            [
                labels[id(g)],
                g.cell("recall@20", ties),
                f"{ref[0]:.2f}" if ref else "",
                f"{recall - ref[0]:+.2f}" if ref else "",
                g.cell("mrr@20", ties),
                f"{ref[1]:.2f}" if ref else "",
                f"{mrr - ref[1]:+.2f}" if ref else "",
                f"{g.cost('fit_seconds'):.1f}",
                f"{g.cost('evaluate_seconds'):.1f}",
                f"{g.cost('peak_rss_bytes') / 2**30:.2f}",
                str(len(g.runs)),
            ]
        )
    headers = ["method", "Recall@20", "ref.", "Δ", "MRR@20", "ref.", "Δ", "fit s", "eval s", "peak GiB", "seeds"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return (
        "## Table 3: Recall@20 and MRR@20 (%)\n\n"
        f"{table}\n\nΔ = ours - reference. Costs are means over seeds: fit and evaluation wall seconds, "
        "peak resident memory of the process during the run.\n"
    )


def _table5(groups: Sequence[Group], labels: dict[int, str], ties: str) -> str:
    proposed = [g for g in groups if g.paper_row == paper.PROPOSED_ROW]
    baselines = [g for g in groups if g.paper_row in paper.BASELINE_ROWS]
    if not proposed or not baselines:
        return ""
    best = max(baselines, key=lambda g: g.mean("recall@20", ties))
    ours = max(proposed, key=lambda g: g.mean("recall@20", ties))
    base_hits, our_hits = best.hits_by_length(ties), ours.hits_by_length(ties)
    cases = {b: v["cases"] for b, v in ours.runs[0]["by_ties"][ties]["per_length"].items()}
    buckets = list(base_hits)
    rows = [
        ["test cases", *(str(cases[b]) for b in buckets)],
        [labels[id(best)], *(f"{base_hits[b]:.0f}" for b in buckets)],
        [labels[id(ours)], *(f"{our_hits[b]:.0f}" for b in buckets)],
        ["improvement", *(_improvement(our_hits[b], base_hits[b]) for b in buckets)],
    ]
    table = tabulate(rows, headers=["prefix length", *buckets], tablefmt="github", disable_numparse=True)
    return (
        "## Table 5: test cases answered in the top 20, by prefix length\n\n"
        f"{table}\n\nBaseline: the best of the paper's baselines here by Recall@20 ({labels[id(best)]}). "
        "Improvement = (proposed - baseline) / baseline.\n"
    )


def _improvement(ours: float, base: float) -> str:
    return f"{100 * (ours - base) / base:+.1f}%" if base else ""


def _failures(failures: Sequence[dict[str, Any]]) -> str:
    if not failures:
        return ""
    lines = [f"- {f['job'].get('method')} seed {f['job'].get('seed')}: {f['error'].splitlines()[0][:200]}" for f in failures]
    return "## Runs that failed\n\n" + "\n".join(lines) + "\n"
