"""GCE-GNN's two graphs: the global graph of item transitions over the training sessions, and
the session graph of a prefix with its four kinds of edge, built for a whole batch at once and
held packed (the graphs of a batch side by side, the edges as lists).

Both follow the authors' code (github.com/CCIIPLab/GCE-GNN at 2125753: ``build_graph.py``,
``utils.py``):

- **Global graph** (``build_graph.py``, ``handle_adj``): for every training session and every
  pair of clicks at most ``epsilon`` = 3 positions apart, both directions are counted as an edge
  (a repeated item within 3 clicks is its own neighbour; every occurrence counts). Each item
  keeps its ``n_neighbours`` (12) neighbours of highest count, ties in the order the pairs first
  occur (session by session, distance 1 then 2 then 3, left to right, forward before backward:
  the code's stable sort of its insertion-ordered dict); an item with fewer is padded by drawing
  from its own neighbours with replacement, once, before training. The weights are the raw
  counts. Row 0 (the padding item) and an item without neighbours have neighbour 0 with weight 0.
- **Session graph** (``Data.__getitem__``): the prefix's distinct items as nodes; every node has
  a self edge (kind 1); for consecutive clicks a -> b (a != b) in time, b's edge to a is "in"
  (kind 2: a precedes b) and a's edge to b is "out" (kind 3), and both become "in-out" (kind 4)
  when b -> a occurs too. The code builds it on the reversed prefix with the same outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sessionbench.data import Sessions

__all__ = ["PackedSessionGraphs", "global_graph", "session_graphs"]

#: The code's fixed distance within which two clicks of a session are neighbours (``range(1, 4)``).
EPSILON = 3


def global_graph(
    sessions: Sessions, n_items: int, n_neighbours: int = 12, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's sampled neighbours in the global graph of ``sessions``.

    Args:
        sessions: The training sessions (item indices 0..n_items-1).
        n_items: Items of the split.
        n_neighbours: Neighbours kept per item (the code's ``n_sample_all``).
        rng: Draws the padding of items with fewer neighbours (the code: numpy's global seed 2020).

    Returns:
        (neighbours int64[n_items + 1, n_neighbours] as embedding rows, weights
        float32[n_items + 1, n_neighbours] the co-occurrence counts); row 0 is the padding item.
    """
    rng = rng if rng is not None else np.random.default_rng(2020)
    rows = sessions.items.astype(np.int64) + 1
    which = np.repeat(np.arange(len(sessions)), sessions.lengths)
    position = np.arange(len(rows)) - np.repeat(sessions.offsets[:-1], sessions.lengths)
    src, dst, order = [], [], []
    width = int(sessions.lengths.max()) if len(sessions) else 1
    for k in range(1, EPSILON + 1):  # the code's distances, not a loop over data
        j = np.flatnonzero(which[:-k] == which[k:]) if len(rows) > k else np.zeros(0, np.int64)
        base = ((which[j] * EPSILON + (k - 1)) * width + position[j]) * 2
        src += [rows[j], rows[j + k]]
        dst += [rows[j + k], rows[j]]
        order += [base, base + 1]  # forward before backward
    src, dst, order = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (src, dst, order))
    pair = src * (n_items + 1) + dst
    by_pair = np.lexsort((order, pair))  # each pair's occurrences together, the first one first
    pair, order = pair[by_pair], order[by_pair]
    start = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    count = np.diff(np.r_[start, len(pair)])
    first, pair = order[start], pair[start]
    a, b = pair // (n_items + 1), pair % (n_items + 1)
    rank = np.lexsort((first, -count, a))  # per item: highest count first, ties by first occurrence
    a, b, count = a[rank], b[rank], count[rank]
    begin = np.searchsorted(a, np.arange(n_items + 1))
    have = np.diff(np.r_[begin, len(a)])
    slot = np.arange(n_neighbours)[None, :]
    short = have < n_neighbours
    # the top n_neighbours of each item; an item with fewer draws that many with replacement
    pick = np.where(short[:, None], (rng.random((n_items + 1, n_neighbours)) * np.maximum(have, 1)[:, None]).astype(np.int64), slot)
    index = np.minimum(begin[:, None] + pick, max(len(a) - 1, 0))
    none = have[:, None] == 0
    neighbours = np.where(none, 0, b[index] if len(a) else 0).astype(np.int64)
    weights = np.where(none, 0.0, count[index] if len(a) else 0.0).astype(np.float32)
    return neighbours, weights


@dataclass
class PackedSessionGraphs:
    """The session graphs of a batch of B prefixes, packed: R nodes, C real clicks, E edges.

    Attributes:
        node_item: int64[R], each node's item as an embedding row, graph by graph, ascending.
        node_graph: int64[R], the prefix each node belongs to.
        click_node: int64[C], the node of each real click, prefix by prefix in click order.
        click_row: int64[C], the prefix of each real click.
        row, col: int64[E], the edges: node ``row`` attends to node ``col``.
        kind: int64[E], 0 self, 1 in (col precedes row), 2 out (col follows row), 3 in-out
            (the code's adjacency values 1-4, minus one).
    """

    node_item: torch.Tensor
    node_graph: torch.Tensor
    click_node: torch.Tensor
    click_row: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    kind: torch.Tensor

    def dense(self, graph: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One graph in the code's dense form: (items int64[n], adjacency int64[n, n] with the
        code's values 1-4 and 0 for no edge)."""
        first = int((self.node_graph < graph).sum())
        n = int((self.node_graph == graph).sum())
        edges = self.node_graph[self.row] == graph
        adjacency = torch.zeros(n, n, dtype=torch.int64)
        adjacency[self.row[edges] - first, self.col[edges] - first] = self.kind[edges] + 1
        return self.node_item[first : first + n], adjacency


def session_graphs(items: torch.Tensor, lengths: torch.Tensor) -> PackedSessionGraphs:
    """The session graph of every prefix of a batch, packed, without a Python loop over prefixes.

    Args:
        items: int64[B, L] clicks as embedding rows (item + 1), left-aligned, 0 after each
            prefix's length.
        lengths: int64[B] clicks per prefix (>= 1).
    """
    b, width = items.shape
    device = items.device
    real = torch.arange(width, device=device)[None, :] < lengths[:, None]
    rows = torch.arange(b, device=device)[:, None].expand(b, width)
    span = int(items.max()) + 1 if items.numel() else 1
    keys, click_node = torch.unique(rows[real] * span + items[real], return_inverse=True)
    n = len(keys)
    nodes = torch.zeros(b, width, dtype=torch.int64, device=device)
    nodes[real] = click_node
    step = real[:, 1:]
    a, c = nodes[:, :-1][step], nodes[:, 1:][step]  # a clicked, then c
    moved = a != c
    pairs = torch.unique(a[moved] * n + c[moved])  # distinct transitions a -> c in time
    src, dst = pairs // n, pairs % n
    both = torch.isin(dst * n + src, pairs)  # c -> a occurs too
    selfs = torch.arange(n, device=device)
    row = torch.cat([selfs, dst, src])
    col = torch.cat([selfs, src, dst])
    kind = torch.cat([torch.zeros(n, dtype=torch.int64, device=device), torch.where(both, 3, 1), torch.where(both, 3, 2)])
    # an in-out pair comes from both of its transitions: keep one of each (row, col)
    edge, first = _first_of(row * n + col)
    return PackedSessionGraphs(keys % span, keys // span, click_node, rows[real], row[first], col[first], kind[first])


def _first_of(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct values of ``keys`` and the position of one occurrence of each."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    position = torch.full((len(unique),), len(keys), dtype=torch.int64, device=keys.device)
    position.scatter_reduce_(0, inverse, torch.arange(len(keys), device=keys.device), reduce="amin")
    return unique, position
