"""Table 3 of a page: every main method's Recall@20 and MRR@20 beside the published numbers,
the methods beyond the paper below the paper's own, and the same numbers under every tie mode
for the methods whose scores tie.

A method is *beyond the paper* when its class names no row of the paper's Table 3 (nor one of
the extra reference rows such as the tuned GRU4Rec): the session-kNN family, the rule
baselines, and any plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import wilcoxon
from tabulate import tabulate

from sessionbench import paper
from sessionbench.evaluation import TIE_MODES
from sessionbench.runs import Group

__all__ = ["best", "beyond_paper", "table3", "tie_table"]

#: A metric that moves by less than this (a fraction) between tie modes does not tie.
_TIE_EPSILON = 5e-5


def beyond_paper(group: Group) -> bool:
    """True for a method that is not one of the paper's rows (nor an extra reference row)."""
    return group.paper_row not in paper.ROWS + paper.EXTRA_ROWS


def best(groups: Sequence[Group], row: str, ties: str) -> Group | None:
    """The group of the paper's ``row`` with the highest mean Recall@20, or None."""
    candidates = [g for g in groups if g.paper_row == row]
    return max(candidates, key=lambda g: g.mean("recall@20", ties)) if candidates else None


def table3(
    groups: Sequence[Group], labels: dict[int, str], ties: str, reference: paper.Reference | None, dataset: str = ""
) -> str:
    """The markdown of Table 3 (empty without groups); ``dataset`` (the base name, e.g.
    "diginetica") picks session-rec's published numbers for the tie-mode table."""
    if not groups:
        return ""
    proposed = best(groups, paper.PROPOSED_ROW, ties)
    ours = [g for g in groups if not beyond_paper(g)]
    beyond = [g for g in groups if beyond_paper(g)]
    rows = [_row(g, labels, ties, reference, proposed) for g in ours]
    if beyond:
        rows.append(["*beyond the paper:*", *[""] * 11])
        rows += [_row(g, labels, ties, reference, proposed) for g in beyond]
    headers = ["method", "Recall@20", "ref.", "Δ", "MRR@20", "ref.", "Δ", "p vs NARM", "fit s", "eval s", "peak GiB", "seeds"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    tuned = [g for g in groups if g.tuning]
    tuning = (
        " Rows marked *tuned* ran the setting chosen on the validation split (the most recent 10% of the "
        "training sessions) by the number of trials they name; see docs/protocol.md, Tuning."
        if tuned
        else ""
    )
    return (
        "## Table 3: Recall@20 and MRR@20 (%)\n\n"
        f"{table}\n\nΔ = ours - reference. p vs NARM: two-sided Wilcoxon signed-rank tests over the paired "
        "test cases, on hits@20 (Recall@20) / on reciprocal ranks cut at 20 (MRR@20), per-case values "
        "averaged over seeds. Costs are means over seeds: fit and evaluation wall seconds, peak resident "
        f"memory of the process during the run.{tuning}\n" + tie_table(groups, labels, dataset)
    )


def tie_table(groups: Sequence[Group], labels: dict[int, str], dataset: str = "") -> str:
    """Recall@20 / MRR@20 under every tie mode, for the methods whose numbers depend on it
    (many equal scores: rules, neighbourhoods, popularity), beside session-rec's published
    numbers for the dataset where it has them; empty when no method's numbers depend on it."""
    tied = [g for g in groups if _ties_matter(g)]
    if not tied:
        return ""
    published = paper.SESSION_REC.get(dataset, {})
    rows = [
        [
            labels[id(g)],
            *(f"{g.cell('recall@20', t)} / {g.cell('mrr@20', t)}" for t in TIE_MODES),
            "{:.2f} / {:.2f}".format(*published[g.method]) if g.method in published else "",
        ]
        for g in tied
    ]
    headers = ["method", *(f"{t} R@20 / M@20" for t in TIE_MODES), "session-rec HR@20 / MRR@20"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return (
        "\n### Table 3 under every tie mode\n\n"
        "Methods whose scores tie the target with other items often enough to move a number. "
        "conservative: tied items rank ahead of the target; standard: behind it (close to taking the top 20 "
        "of a sort, as session-rec does, when the target's tied block is cut by the sort's order); median: "
        "half of them ahead. session-rec: its published numbers on its own single split of the dataset "
        f"(close to ours, not identical).\n\n{table}\n"
    )


def _ties_matter(group: Group) -> bool:
    for metric in ("recall@20", "mrr@20"):
        values = [group.mean(metric, t) for t in TIE_MODES]
        if max(values) - min(values) > _TIE_EPSILON:
            return True
    return False


def _row(g: Group, labels: dict[int, str], ties: str, reference: paper.Reference | None, proposed: Group | None) -> list[str]:
    ref = reference.rows.get(g.paper_row or "") if reference else None
    recall, mrr = 100 * g.mean("recall@20", ties), 100 * g.mean("mrr@20", ties)
    return [
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
