"""Renders the paper's tables as markdown (and Figure 5 as PNG), from the raw result files alone.

Nothing here trains or reads a dataset: ``results/raw/<dataset>/*.json`` holds everything
(metrics under every tie mode, per-length hits, split statistics, costs, versions) and the
``.npz`` beside each holds its per-case ranks, so ``--tables-only`` regenerates byte-identical
markdown. Numbers are percentages; where several seeds ran, cells show mean ± sample standard
deviation.

Suites choose the tables: ``main`` (Tables 1, 3, 5), ``ablations`` (Tables 1, 2, 4) and
``paper`` (all of them, Figure 5, and NARM's attention heatmap, Figure 6).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wilcoxon
from tabulate import tabulate

from sessionbench import paper
from sessionbench.evaluation import HEADLINE_K, ranks_from_counts

__all__ = ["SUITES", "Group", "load_groups", "render", "write_tables"]

SUITES = {"main": ("1", "3", "5"), "ablations": ("1", "2", "4"), "paper": ("1", "2", "3", "4", "5", "figures")}

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
    folder: Path

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

    def per_case(self, ties: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-case hit@20 and reciprocal rank@20, averaged over seeds: float64[n_cases] each."""
        hits, rr = [], []
        for run in self.runs:
            with np.load(self.folder / run["ranks_file"], allow_pickle=False) as z:
                ranks = ranks_from_counts(z["greater"], z["equal"], ties)
            hit = ranks <= HEADLINE_K
            hits.append(hit)
            rr.append(np.where(hit, 1.0 / ranks, 0.0))
        return np.mean(hits, axis=0), np.mean(rr, axis=0)

    @property
    def in_table3(self) -> bool:
        """Table 3 shows the main methods at their own settings, not ablation variants."""
        return all(r.get("variant") is None and "main" in r.get("suites", ["main"]) for r in self.runs)

    @property
    def hidden_size(self) -> Any:
        return self.runs[0]["params"].get("hidden_size")


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
        groups.setdefault(key, Group(run["method"], run["params_hash"], run.get("paper_row"), [], folder)).runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: r["seed"])
    order = {row: i for i, row in enumerate(paper.ROWS + _EXTRA_ROWS)}
    ordered = sorted(groups.values(), key=lambda g: (order.get(g.paper_row or "", len(order)), g.method, g.params_hash))
    return ordered, failures


def render(results_dir: Path, dataset: str, ties: str = "conservative", suite: str = "main") -> str:
    """The markdown page of one dataset; with the ``paper`` suite also writes Figure 5."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    groups, failures = load_groups(results_dir, dataset)
    if not groups:
        return f"# {dataset}\n\nNo finished runs in {Path(results_dir) / 'raw' / dataset}.\n"
    info = groups[0].runs[-1]["dataset_info"]
    base = info.get("dataset", dataset)
    reference = paper.reference_for(base, info.get("order"))
    published_order = paper.ablations_published(base, info.get("order"))
    main = [g for g in groups if g.in_table3]
    labels = _labels(main)
    tables = SUITES[suite]
    parts = [_header(dataset, groups, info, ties, reference, suite)]
    if "1" in tables:
        parts.append(_table1(base, info))
    if "2" in tables:
        parts.append(_table2(groups, base, ties, published_order))
    if "3" in tables:
        parts.append(_table3(main, labels, ties, reference))
    if "4" in tables:
        parts.append(_table4(groups, base, ties, published_order))
    if "5" in tables:
        parts.append(_table5(main, labels, ties))
    if "figures" in tables:
        parts.append(_figures(Path(results_dir), dataset, main, labels, ties))
    parts.append(_failures(failures))
    return "\n".join(p for p in parts if p)


def write_tables(results_dir: Path, dataset: str, ties: str = "conservative", suite: str = "main") -> Path:
    """Render and write ``<results_dir>/<dataset>.md`` (and, for the paper suite, its figures)."""
    path = Path(results_dir) / f"{dataset}.md"
    path.write_text(render(results_dir, dataset, ties, suite))
    return path


def _labels(groups: Sequence[Group]) -> dict[int, str]:
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.method] = counts.get(g.method, 0) + 1
    return {id(g): g.method if counts[g.method] == 1 else f"{g.method} ({g.params_hash})" for g in groups}


def _header(dataset: str, groups: Sequence[Group], info: dict[str, Any], ties: str, reference: paper.Reference | None, suite: str) -> str:
    commits = sorted({r["versions"].get("commit", "unknown") for g in groups for r in g.runs})
    protocol = info.get("protocol")
    if isinstance(protocol, dict):
        protocol = ", ".join(f"{k}={v}" for k, v in protocol.items())
    lines = [
        f"# {dataset}: sessionbench results ({suite} suite)",
        "",
        f"- Data: {info.get('form')} from {_short_source(info.get('source'))}; clicks within a session in "
        f"**{info.get('order')}** order{' (as the files were made)' if info.get('order_declared') else ''}.",
        f"- Protocol: {protocol}.",
        f"- Evaluation: every prefix of every test session is a case; its target is ranked among all "
        f"{info.get('n_items'):,} items (full ranking, no sampling). Ties: **{ties}** "
        "(conservative: items scoring the same as the target rank ahead of it).",
        f"- Code: commit {', '.join(commits)}.",
        _hardware(groups),
        f"- Reference column: {reference.source}." if reference else "- Reference column: none published for this dataset.",
    ]
    for note in info.get("notes", []):
        lines.append(f"- Note: {note}.")
    return "\n".join(lines) + "\n"


def _hardware(groups: Sequence[Group]) -> str:
    """Where the runs ran: fit seconds and peak memory only compare within one device."""
    labels = _labels(groups)  # two settings of one method stay apart, as in the tables
    methods: dict[str, set[str]] = {}
    for g in groups:
        for r in g.runs:
            methods.setdefault(r.get("device") or "unknown", set()).add(labels[id(g)])
    if len(methods) <= 1:
        return f"- Hardware: {next(iter(methods), 'unknown')}, every run."
    where = "; ".join(f"{device}: {', '.join(sorted(names))}" for device, names in sorted(methods.items()))
    return f"- Hardware: {where}. Costs compare only runs on the same hardware."


def _short_source(source: str | None) -> str:
    if not source:
        return "?"
    return source.replace(str(Path.home()), "~")


def _table1(dataset: str, info: dict[str, Any]) -> str:
    ours = info["stats"]
    rows = [["ours", *(_number(ours[k]) for k, _ in _STAT_COLUMNS)]]
    published = paper.TABLE1.get(dataset)
    notes = [
        "Sequences are counted after prefix expansion; items are the distinct items of the training data used; "
        "avg.length is the mean of (prefix length + 1) over all sequences, truncated to two decimals."
    ]
    if published:
        rows.append(["paper", *(_number(published[k]) for k, _ in _STAT_COLUMNS)])
        differ = [h for k, h in _STAT_COLUMNS if ours[k] != published[k]]
        if differ:
            notes.append(f"Differs from the paper in: {', '.join(differ)} (we report what the data gives).")
    table = tabulate(rows, headers=["", *(h for _, h in _STAT_COLUMNS)], tablefmt="github", disable_numparse=True)
    return f"## Table 1: statistics of the split\n\n{table}\n\n" + " ".join(notes) + "\n"


def _number(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) or float(x).is_integer() else f"{x:.2f}"


def _table3(groups: Sequence[Group], labels: dict[int, str], ties: str, reference: paper.Reference | None) -> str:
    if not groups:
        return ""
    proposed = _best(groups, paper.PROPOSED_ROW, ties)
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
                _significance(g, proposed, ties),
                f"{g.cost('fit_seconds'):.1f}",
                f"{g.cost('evaluate_seconds'):.1f}",
                f"{g.cost('peak_rss_bytes') / 2**30:.2f}",
                str(len(g.runs)),
            ]
        )
    headers = ["method", "Recall@20", "ref.", "Δ", "MRR@20", "ref.", "Δ", "p vs NARM", "fit s", "eval s", "peak GiB", "seeds"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return (
        "## Table 3: Recall@20 and MRR@20 (%)\n\n"
        f"{table}\n\nΔ = ours - reference. p vs NARM: two-sided Wilcoxon signed-rank tests over the paired "
        "test cases, on hits@20 (Recall@20) / on reciprocal ranks cut at 20 (MRR@20), per-case values "
        "averaged over seeds. Costs are means over seeds: fit and evaluation wall seconds, peak resident "
        "memory of the process during the run.\n"
    )


def _best(groups: Sequence[Group], row: str, ties: str) -> Group | None:
    candidates = [g for g in groups if g.paper_row == row]
    return max(candidates, key=lambda g: g.mean("recall@20", ties)) if candidates else None


def _significance(group: Group, proposed: Group | None, ties: str) -> str:
    if proposed is None or group is proposed:
        return ""
    if group.runs[0]["n_test_cases"] != proposed.runs[0]["n_test_cases"]:
        return "n/a"
    ours, theirs = group.per_case(ties), proposed.per_case(ties)
    return " / ".join(_p_value(a, b) for a, b in zip(ours, theirs))


def _p_value(a: np.ndarray, b: np.ndarray) -> str:
    if np.array_equal(a, b):
        return "1"
    p = float(wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table5(groups: Sequence[Group], labels: dict[int, str], ties: str) -> str:
    ours = _best(groups, paper.PROPOSED_ROW, ties)
    baselines = [g for g in groups if g.paper_row in paper.BASELINE_ROWS]
    if ours is None or not baselines:
        return ""
    best = max(baselines, key=lambda g: g.mean("recall@20", ties))
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
        "Improvement = (NARM - baseline) / baseline. The paper's Table 5 (DIGINETICA, clicks in file order, "
        "baseline Improved GRU-Rec) is in sessionbench/paper.py.\n"
    )


def _improvement(ours: float, base: float) -> str:
    return f"{100 * (ours - base) / base:+.1f}%" if base else ""


def _pair(value: tuple[float, float] | None) -> str:
    return f"{value[0]:.2f} / {value[1]:.2f}" if value else ""


def _ours(group: Group | None, ties: str) -> str:
    return f"{group.cell('recall@20', ties)} / {group.cell('mrr@20', ties)}" if group else "not run"


def _table2(groups: Sequence[Group], dataset: str, ties: str, published: bool) -> str:
    rows = []
    for label in paper.TABLE2:
        candidates = [g for g in groups if g.runs[0].get("paper_tables", {}).get("table2") == label and g.hidden_size in (None, 100)]
        best = max(candidates, key=lambda g: g.mean("recall@20", ties)) if candidates else None
        ref = paper.TABLE2[label].get(dataset) if published else None
        rows.append([label, best.method if best else "", _ours(best, ties), _pair(ref)])
    if all(r[1] == "" for r in rows):
        return ""
    table = tabulate(rows, headers=["decoder", "method", "ours R@20 / M@20", "paper"], tablefmt="github", disable_numparse=True)
    return f"## Table 2: NARM's decoders (Recall@20 / MRR@20, %)\n\n{table}\n\n{_paper_note(dataset, published)}\n"


def _table4(groups: Sequence[Group], dataset: str, ties: str, published: bool) -> str:
    rows = []
    for encoder in ("global", "local", "hybrid"):
        row = [encoder]
        for d in (50, 100):
            candidates = [
                g for g in groups if g.runs[0].get("paper_tables", {}).get("table4") == encoder and g.hidden_size == d
            ]
            best = max(candidates, key=lambda g: g.mean("recall@20", ties)) if candidates else None
            ref = paper.TABLE4[(encoder, d)].get(dataset) if published else None
            row += [_ours(best, ties), _pair(ref)]
        rows.append(row)
    if all(cell == "not run" for r in rows for cell in r[1::2]):
        return ""
    headers = ["encoder", "ours d=50", "paper d=50", "ours d=100", "paper d=100"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return f"## Table 4: NARM's encoders at hidden size d (Recall@20 / MRR@20, %)\n\n{table}\n\n{_paper_note(dataset, published)}\n"


def _paper_note(dataset: str, published: bool) -> str:
    if published:
        return "Paper: the NARM paper's numbers for this dataset and click order."
    if dataset in paper.TABLE1:
        return "Paper: no published numbers for this click order (the paper's DIGINETICA runs used file order)."
    return "Paper: no published numbers for this dataset."


def _figures(results_dir: Path, dataset: str, groups: Sequence[Group], labels: dict[int, str], ties: str) -> str:
    from sessionbench.figures import bar_figure

    lines = ["## Figures", ""]
    ours = _best(groups, paper.PROPOSED_ROW, ties)
    baselines = [g for g in groups if g.paper_row in paper.BASELINE_ROWS]
    if ours is not None and baselines:
        best = max(baselines, key=lambda g: g.mean("recall@20", ties))
        name = f"{dataset}-figure5.png"
        bars = {labels[id(g)]: {"Recall@20": 100 * g.mean("recall@20", ties), "MRR@20": 100 * g.mean("mrr@20", ties)} for g in (best, ours)}
        bar_figure(results_dir / name, dataset, bars)
        lines.append(f"Figure 5: NARM against the best baseline ({labels[id(best)]}).\n\n![Figure 5]({name})\n")
    if ours is not None and ours.runs[0].get("attention_figure"):
        figure = Path("raw") / dataset / ours.runs[0]["attention_figure"]
        lines.append(f"Figure 6: NARM's attention weights over a few test sessions (seed {ours.runs[0]['seed']}).\n\n![Figure 6]({figure.as_posix()})\n")
    return "\n".join(lines) if len(lines) > 2 else ""


def _failures(failures: Sequence[dict[str, Any]]) -> str:
    if not failures:
        return ""
    lines = [f"- {f['job'].get('method')} seed {f['job'].get('seed')}: {f['error'].splitlines()[0][:200]}" for f in failures]
    return "## Runs that failed\n\n" + "\n".join(lines) + "\n"
