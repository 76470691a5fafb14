"""Table 3 of a page: every main method's Recall@20 and MRR@20 beside the published numbers,
the methods beyond the paper below the paper's own, and the same numbers under every tie mode
for the methods whose scores tie.

Every row but NARM's is compared with NARM: the difference of its Recall@20 and of its MRR@20
from NARM's, with a 95% interval and a two-sided p-value from a paired bootstrap that resamples
whole test sessions (:func:`sessionbench.bootstrap.paired_bootstrap_columns`), all rows on the
same resamples in one pass.

A method is *beyond the paper* when its class names no row of the paper's Table 3 (nor one of
the extra reference rows such as the tuned GRU4Rec): the session-kNN family, the rule
baselines, and any plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from tabulate import tabulate

from sessionbench import paper
from sessionbench.bootstrap import PairedDifference, paired_bootstrap_columns
from sessionbench.evaluation import TIE_MODES
from sessionbench.runs import Group

__all__ = ["best", "beyond_paper", "comparisons", "table3", "tie_table"]

log = logging.getLogger(__name__)

#: A metric that moves by less than this (a fraction) between tie modes does not tie.
_TIE_EPSILON = 5e-5
#: The paired bootstrap against NARM: resamples of the test sessions, and their seed.
N_RESAMPLES, BOOTSTRAP_SEED = 2000, 0
#: The comparison columns, in order.
_COMPARISON_HEADERS = ["ΔR@20 vs NARM [95% CI]", "ΔMRR@20 vs NARM [95% CI]", "p vs NARM"]


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
    """The markdown of Table 3 (empty without groups), each row compared with the NARM row of
    the highest Recall@20 (:func:`comparisons`); ``dataset`` (the base name, e.g.
    "diginetica") picks session-rec's published numbers for the tie-mode table."""
    if not groups:
        return ""
    proposed = best(groups, paper.PROPOSED_ROW, ties)
    against = comparisons(groups, proposed, ties)
    ours = [g for g in groups if not beyond_paper(g)]
    beyond = [g for g in groups if beyond_paper(g)]
    rows = [_row(g, labels, ties, reference, against) for g in ours]
    headers = ["method", "Recall@20", "ref.", "Δ", "MRR@20", "ref.", "Δ", *_COMPARISON_HEADERS, "fit s", "eval s", "peak GiB", "seeds"]
    if beyond:
        rows.append(["*beyond the paper:*", *[""] * (len(headers) - 1)])
        rows += [_row(g, labels, ties, reference, against) for g in beyond]
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
        f"{table}\n\nΔ = ours - reference. {_comparison_note(groups, proposed, labels)} Where several seeds ran, "
        "a cell shows the mean ± the sample standard deviation over the seeds. Costs are means over seeds: "
        "fit and evaluation wall seconds, peak resident memory of the process during the run."
        f"{tuning}\n" + tie_table(groups, labels, dataset)
    )


def comparisons(groups: Sequence[Group], proposed: Group | None, ties: str) -> dict[int, list[str]]:
    """Table 3's comparison cells of every group but ``proposed`` (by ``id``): the difference
    group - proposed of Recall@20 and of MRR@20 in percentage points with its 95% interval, and
    the two p-values, from one paired bootstrap over the test sessions (:data:`N_RESAMPLES`
    resamples, seed :data:`BOOTSTRAP_SEED`) of the per-case values averaged over seeds.

    Every group is compared on the same resampled sessions in one pass. A group that was not
    evaluated on the proposed group's test cases gets "n/a" (a warning says why when their
    numbers agree but the cases do not); an empty dict without a proposed group.
    """
    if proposed is None:
        return {}
    others = [g for g in groups if g is not proposed]
    cells = {id(g): ["n/a"] * len(_COMPARISON_HEADERS) for g in others}
    sessions = _sessions(proposed)
    paired = [g for g in others if _same_cases(g, proposed, sessions)] if sessions is not None else []
    if not paired:
        return cells
    baseline = np.column_stack(proposed.per_case(ties))  # float64[n_cases, 2]: hit@20, rr@20
    ours = np.concatenate([np.column_stack(g.per_case(ties)) for g in paired], axis=1)  # [n_cases, 2 per group]
    theirs = np.tile(baseline, len(paired))
    results = paired_bootstrap_columns(ours, theirs, sessions, N_RESAMPLES, BOOTSTRAP_SEED)
    identical = np.all(ours == theirs, axis=0)
    for i, g in enumerate(paired):
        cells[id(g)] = _comparison_cells(results[2 * i : 2 * i + 2], identical[2 * i : 2 * i + 2])
    return cells


def _comparison_note(groups: Sequence[Group], proposed: Group | None, labels: dict[int, str]) -> str:
    """The note under Table 3 on its comparison columns."""
    if proposed is None:
        narm = " (no NARM row has run yet)"
    elif sum(g.paper_row == paper.PROPOSED_ROW for g in groups) > 1:
        narm = f" (NARM: the {labels[id(proposed)]} row, the NARM row of the highest Recall@20)"
    else:
        narm = ""
    return (
        f"ΔR@20 / ΔMRR@20 vs NARM{narm}: the row's Recall@20 / MRR@20 minus NARM's, in percentage points, with "
        f"its 95% interval from a paired bootstrap over the test sessions: {N_RESAMPLES} resamples of whole sessions "
        "drawn with replacement (the prefixes of a session are not independent cases, so a session is never split), "
        "on the per-case hits@20 and reciprocal ranks cut at 20, each averaged over the seeds before resampling. "
        "p vs NARM: two-sided p-values of Recall@20 / MRR@20 from the same resamples (twice the smaller share of "
        f"resampled differences on either side of 0, at least 1/{N_RESAMPLES}; 1: identical per-case values). "
        "n/a: not evaluated on the same test cases as NARM."
    )


def _sessions(proposed: Group) -> np.ndarray | None:
    """The proposed group's session of each case, or None (with a warning) when its ranks files
    do not say."""
    try:
        return proposed.case_sessions()
    except ValueError as e:
        log.warning("Table 3 compares nothing with %s: %s", proposed.method, e)
        return None


def _same_cases(group: Group, proposed: Group, sessions: np.ndarray) -> bool:
    """True when ``group`` ran on the proposed group's test cases, in the same order."""
    if group.runs[0]["n_test_cases"] != proposed.runs[0]["n_test_cases"]:
        return False
    try:
        same = np.array_equal(group.case_sessions(), sessions)
    except ValueError as e:
        log.warning("Table 3 does not compare %s with %s: %s", group.method, proposed.method, e)
        return False
    if not same:
        log.warning("Table 3 does not compare %s with %s: as many test cases, but other sessions", group.method, proposed.method)
    return same


def _comparison_cells(results: Sequence[PairedDifference], identical: np.ndarray) -> list[str]:
    """The Recall@20 and MRR@20 interval cells and the p-value cell of one group."""
    intervals = [f"{100 * r.difference:+.2f} [{100 * r.low:+.2f}, {100 * r.high:+.2f}]" for r in results]
    return [*intervals, " / ".join(_p_text(r.p_value, same) for r, same in zip(results, identical))]


def _p_text(p: float, identical: bool) -> str:
    if identical:
        return "1"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


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


def _row(g: Group, labels: dict[int, str], ties: str, reference: paper.Reference | None, against: dict[int, list[str]]) -> list[str]:
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
        *against.get(id(g), [""] * len(_COMPARISON_HEADERS)),
        f"{g.cost('fit_seconds'):.1f}",
        f"{g.cost('evaluate_seconds'):.1f}",
        f"{g.cost('peak_rss_bytes') / 2**30:.2f}",
        str(len(g.runs)),
    ]
