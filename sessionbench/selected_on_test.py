"""The page's table of runs selected on the test set (``selection="test-best"``), beside the
same methods selected the suite's way.

The published numbers of STAMP, SR-GNN and GCE-GNN come from scripts that score the test set
after every epoch and report the best Recall@20 and the best MRR@20 over the epochs, which can
come from different epochs. A run with ``selection="test-best"`` does the same, so that it can be
checked against the published number; how much that flatters a model is the gap to the same
model selected on the validation split and refit. These runs are kept out of Table 3.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tabulate import tabulate

from sessionbench import paper
from sessionbench.runs import Group, label_groups, percent_cell

__all__ = ["selected_on_test_table"]

#: The heading every such table carries, so that no reader mistakes its numbers for ours.
TITLE = "## As published: selected on the test set (not comparable with Table 3)"


def selected_on_test_table(groups: Sequence[Group], ties: str, reference: paper.Reference | None) -> str:
    """The markdown of the test-selected runs among ``groups`` (empty if none)."""
    chosen = [g for g in groups if g.test_selected]
    if not chosen:
        return ""
    labels = label_groups(chosen)
    rows = []
    for g in chosen:
        best = [run["selection"]["best"] for run in g.runs if run.get("selection")]
        honest = _honest(g, groups)
        ref = reference.rows.get(g.paper_row or "") if reference else None
        rows.append([
            labels[id(g)],
            percent_cell([b["recall@20"] for b in best]),
            percent_cell([b["mrr@20"] for b in best]),
            ", ".join(str(run["selection"]["epochs"]) for run in g.runs if run.get("selection")),
            f"{honest.cell('recall@20', ties)} / {honest.cell('mrr@20', ties)}" if honest else "",
            f"{100 * statistics.fmean(b['recall@20'] for b in best) - 100 * honest.mean('recall@20', ties):+.2f}" if honest else "",
            "{:.2f} / {:.2f}".format(*ref) if ref else "",
            str(len(g.runs)),
        ])
    headers = ["method", "best R@20 over epochs", "best MRR@20 over epochs", "epoch kept", "selected on validation, refit",
               "R@20 gap", "published", "seeds"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return (
        f"{TITLE}\n\n{table}\n\nThese runs scored the test set after every epoch and report the best Recall@20 and the "
        "best MRR@20 over the epochs (which can come from different epochs), as the authors' scripts do "
        "(`selection=test-best`); the epoch kept is the one of best test Recall@20. Beside them: the same method "
        "selected the suite's way (on the most recent 10% of the training sessions, then refit on all of them), "
        "and the gap in Recall@20 points. Published: the authors' own test-selected numbers.\n"
    )


def _honest(group: Group, groups: Sequence[Group]) -> Group | None:
    """The group of the same method and settings, selected on the validation split."""
    wanted = {k: v for k, v in group.settings.items() if k != "selection"}
    for g in groups:
        if g.method == group.method and not g.test_selected and g.settings == wanted and g.in_table3:
            return g
    return None

