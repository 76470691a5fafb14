"""Renders the paper's tables as markdown (and Figure 5 as PNG), from the raw result files alone.

Nothing here trains or reads a dataset: the split's folder of raw results (see
:mod:`sessionbench.store`) holds everything (metrics under every tie mode, per-length hits,
split statistics, costs, versions) and the ``.npz`` beside each holds its per-case ranks, so
``--tables-only`` regenerates byte-identical markdown. A page describes one split, named by
its files and fingerprint, never by a path of the machine it was made on. Numbers are percentages; where several seeds ran, cells show mean ± sample standard
deviation.

Suites choose the tables: ``main`` (Tables 1, 3, 5), ``ablations`` (Tables 1, 2, 4) and
``paper`` (all of them, Figure 5, and NARM's attention heatmap, Figure 6).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from sessionbench import paper
from sessionbench.files import inside, safe_name
from sessionbench.runs import Group, label_groups, load_runs, markdown_text, resolve_split_folder
from sessionbench.selected_on_test import selected_on_test_table
from sessionbench.table3 import best as best_of_row
from sessionbench.table3 import table3

__all__ = ["SUITES", "render", "write_tables"]

SUITES = {"main": ("1", "3", "5"), "ablations": ("1", "2", "4"), "paper": ("1", "2", "3", "4", "5", "figures")}

_STAT_COLUMNS = (
    ("clicks", "clicks"),
    ("train_sessions", "train seqs"),
    ("test_sessions", "test seqs"),
    ("items", "items"),
    ("avg_length", "avg.length"),
)
def render(results_dir: Path, dataset: str, ties: str = "conservative", suite: str = "main", fingerprint: str | None = None) -> str:
    """The markdown page of one split; with the ``paper`` suite also writes Figure 5.

    Args:
        dataset: The split's name (``Split.name``).
        fingerprint: The split's fingerprint; None: the only split of that name with results.

    Raises:
        ValueError: an unknown suite, or several splits of that name and no fingerprint.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    runs = load_runs(resolve_split_folder(Path(results_dir), dataset, fingerprint))
    groups, smoke = runs.groups, runs.quick
    if not groups:  # a page of smoke runs only renders them as tables, and says so
        groups, smoke = smoke, []
    if not groups:
        which = f" (split {fingerprint[:12]})" if fingerprint else ""
        return f"# {markdown_text(dataset)}\n\nNo finished runs of this split{which}.\n" + _failures(runs.failures)
    info = groups[0].runs[-1]["dataset_info"]
    base = info.get("dataset", dataset)
    reference = paper.reference_for(base, info.get("order"))
    published_order = paper.ablations_published(base, info.get("order"))
    main = [g for g in groups if g.in_table3]
    labels = label_groups(main)
    tables = SUITES[suite]
    parts = [_header(dataset, groups, info, ties, reference, suite)]
    if groups[0].runs[0].get("quick"):
        parts.append("**Smoke runs (--quick)**: every run on this page used its method's quick settings (e.g. one epoch); "
                     "none of these numbers is comparable with the paper's.\n")
    if "1" in tables:
        parts.append(_table1(base, info))
    ours = [g for g in groups if not g.test_selected]
    if "2" in tables:
        parts.append(_table2(ours, base, ties, published_order))
    if "3" in tables:
        parts.append(table3(main, labels, ties, reference, base))
        parts.append(selected_on_test_table(groups, ties, reference))
    if "4" in tables:
        parts.append(_table4(ours, base, ties, published_order))
    if "5" in tables:
        parts.append(_table5(main, labels, ties))
    if "figures" in tables:
        parts.append(_figures(Path(results_dir), dataset, main, labels, ties))
    parts.append(_fit_reports(groups))
    parts.append(_quick(smoke))
    parts.append(_failures(runs.failures))
    return "\n".join(p for p in parts if p)


def write_tables(results_dir: Path, dataset: str, ties: str = "conservative", suite: str = "main", fingerprint: str | None = None) -> Path:
    """Render and write ``<results_dir>/<dataset>.md`` (and, for the paper suite, its figures)."""
    path = inside(Path(results_dir), f"{safe_name(dataset)}.md")
    path.write_text(render(results_dir, dataset, ties, suite, fingerprint))
    return path


def _header(dataset: str, groups: Sequence[Group], info: dict[str, Any], ties: str, reference: paper.Reference | None, suite: str) -> str:
    protocol = info.get("protocol")
    if isinstance(protocol, dict):
        protocol = ", ".join(f"{k}={v}" for k, v in protocol.items())
    lines = [
        f"# {markdown_text(dataset)}: sessionbench results ({suite} suite)",
        "",
        f"- Data: {markdown_text(info.get('form'))} from {_sources(info)}; clicks within a session in "
        f"**{markdown_text(info.get('order'))}** order{' (as the files were made)' if info.get('order_declared') else ''}.",
        f"- Split: fingerprint `{str(info.get('fingerprint', '?'))[:12]}` (sha256 of the sessions the protocol produced); "
        "every run on this page was made on exactly this split.",
        f"- Protocol: {markdown_text(protocol)}.",
        f"- Evaluation: every prefix of every test session is a case; its target is ranked among all "
        f"{info.get('n_items'):,} items (full ranking, no sampling). Ties: **{ties}** "
        "(conservative: items scoring the same as the target rank ahead of it).",
        _code(groups),
        _hardware(groups),
        *_precision(groups),
        f"- Reference column: {reference.source}." if reference else "- Reference column: none published for this dataset.",
    ]
    for note in info.get("notes", []):
        lines.append(f"- Note: {markdown_text(note)}.")
    for warning in info.get("warnings", []):
        lines.append(f"- **Data warning**: {markdown_text(warning)}")
    return "\n".join(lines) + "\n"


def _sources(info: dict[str, Any]) -> str:
    """The source files by name, size and checksum (never their folder)."""
    files = info.get("files")
    if files:
        return ", ".join(
            f"{markdown_text(f['name'])} ({f['bytes']:,} bytes, sha256 `{str(f['sha256'])[:12]}`)" for f in files
        )
    if info.get("form") == "synthetic":
        return f"the embedded generator (size {markdown_text(info.get('size', 'small'))}, seed {markdown_text(info.get('seed', 0))})"
    return markdown_text(Path(str(info.get("source") or "?")).name)


def _code(groups: Sequence[Group]) -> str:
    """The commits the runs came from; those made with uncommitted changes say so."""
    commits = sorted({r["versions"].get("commit", "unknown") for g in groups for r in g.runs})
    dirty = [c for c in commits if c.endswith("+changes")]
    line = f"- Code: commit {', '.join(commits)}."
    if dirty:
        line += (f" {len(dirty)} of these ({', '.join(c.removesuffix('+changes') for c in dirty)}) had uncommitted "
                 "changes to tracked code (dirty tree): their runs are not exactly reproducible from the commit.")
    return line


def _labels_by(groups: Sequence[Group], value: Callable[[dict[str, Any]], str | None]) -> dict[str, set[str]]:
    """The row labels of the groups, by ``value`` of their runs (runs where it is None are left out)."""
    labels = label_groups(groups)  # two settings of one method stay apart, as in the tables
    by: dict[str, set[str]] = {}
    for g in groups:
        for r in g.runs:
            key = value(r)
            if key is not None:
                by.setdefault(key, set()).add(labels[id(g)])
    return by


def _where(by: dict[str, set[str]]) -> str:
    return "; ".join(f"{key}: {', '.join(sorted(names))}" for key, names in sorted(by.items()))


def _hardware(groups: Sequence[Group]) -> str:
    """Where the runs ran: fit seconds and peak memory only compare within one device."""
    methods = _labels_by(groups, lambda r: markdown_text(r.get("device") or "unknown"))
    if len(methods) <= 1:
        return f"- Hardware: {next(iter(methods), 'unknown')}, every run."
    return f"- Hardware: {_where(methods)}. Costs compare only runs on the same hardware."


def _precision(groups: Sequence[Group]) -> list[str]:
    """One line saying which models trained their scoring products in bf16 (none: no line)."""
    by = _labels_by(groups, lambda r: r.get("precision") or None)
    if "bf16" not in by:
        return []
    return [f"- Training precision of the full-softmax products: {_where(by)} (bf16 inputs with fp32 accumulation and an "
            "fp32 softmax; see docs/protocol.md). Every model scores the test cases in fp32."]


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


def _table5(groups: Sequence[Group], labels: dict[int, str], ties: str) -> str:
    ours = best_of_row(groups, paper.PROPOSED_ROW, ties)
    baselines = [g for g in groups if g.paper_row in paper.BASELINE_ROWS]
    if ours is None or not baselines:
        missing = " and ".join(w for w, gone in (("NARM", ours is None), ("one of the paper's baselines", not baselines)) if gone)
        return f"## Table 5: test cases answered in the top 20, by prefix length\n\nNot shown: it compares NARM with the best of the paper's baselines, and this page has no run of {missing}.\n"
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
        rows.append([label, markdown_text(best.method) if best else "", _ours(best, ties), _pair(ref)])
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
    ours = best_of_row(groups, paper.PROPOSED_ROW, ties)
    baselines = [g for g in groups if g.paper_row in paper.BASELINE_ROWS]
    if ours is not None and baselines:
        best = max(baselines, key=lambda g: g.mean("recall@20", ties))
        name = f"{safe_name(dataset)}-figure5.png"
        bars = {labels[id(g)]: {"Recall@20": 100 * g.mean("recall@20", ties), "MRR@20": 100 * g.mean("mrr@20", ties)} for g in (best, ours)}
        bar_figure(inside(results_dir, name), dataset, bars)
        lines.append(f"Figure 5: NARM against the best baseline ({labels[id(best)]}).\n\n![Figure 5]({name})\n")
    figure = ours.attention_figure if ours is not None else None
    if figure is not None:
        # under a stable name beside the page, like Figure 5 (the raw file's name holds a hash)
        name = f"{safe_name(dataset)}-figure6.png"
        data = (ours.folder / figure).read_bytes()
        target = inside(results_dir, name)
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
        lines.append(f"Figure 6: NARM's attention weights over a few test sessions (seed {ours.runs[0]['seed']}).\n\n![Figure 6]({name})\n")
    return "\n".join(lines) if len(lines) > 2 else ""


def _fit_reports(groups: Sequence[Group]) -> str:
    """What fits did where it can differ from their settings (e.g. pre-training skipped, the
    parameter file taken, the epochs selected): one line per group and report, naming the seeds."""
    labels = label_groups(groups)
    lines = []
    for g in groups:
        seeds_of: dict[tuple[str, str], list[str]] = {}
        for run in g.runs:
            for what, report in sorted((run.get("fit_report") or {}).items()):
                seeds_of.setdefault((str(what), str(report)), []).append(str(run["seed"]))
        for (what, report), seeds in seeds_of.items():
            which = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"
            lines.append(f"- {labels[id(g)]} {which}, {markdown_text(what)}: {markdown_text(report)}")
    return "## What the fits did\n\n" + "\n".join(lines) + "\n" if lines else ""


def _quick(groups: Sequence[Group]) -> str:
    """Smoke runs (--quick), listed apart: their settings are not the paper's."""
    if not groups:
        return ""
    labels = label_groups(groups)
    lines = [f"- {labels[id(g)]}: Recall@20 {g.cell('recall@20', g.runs[0]['ties'])}, seeds {', '.join(str(r['seed']) for r in g.runs)}" for g in groups]
    return ("## Smoke runs (--quick), not comparable with the tables above\n\n" + "\n".join(lines) + "\n")


_FOLDERS = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^/\\\s'\"]+)+[/\\]")


def _no_paths(text: str) -> str:
    """``text`` with the folders of any absolute path taken out (file names stay)."""
    return _FOLDERS.sub("", text)


def _failures(failures: Sequence[dict[str, Any]]) -> str:
    if not failures:
        return ""
    lines = [
        f"- {markdown_text(f.get('job', {}).get('method'))} seed {markdown_text(f.get('job', {}).get('seed'))}: "
        f"{markdown_text(_no_paths(str(f.get('error') or '?').splitlines()[0])[:200])}"
        for f in failures
    ]
    return "## Runs that failed\n\n" + "\n".join(lines) + "\n"
