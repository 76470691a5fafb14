"""SR-GNN's session graphs, built for a whole batch of padded prefixes at once and held packed:
the nodes of every graph side by side, the edges as one list.

For each prefix (the authors' ``utils.py``, ``Data.get_slice``, CRIPAC-DIG/SR-GNN at e21cfa4):

- the nodes are its distinct items in ascending order;
- an edge u -> v joins every pair of consecutive clicks, counted once however often the
  transition repeats (the code's 0/1 adjacency; the paper's section 3.2 speaks of counts),
  a self-loop only where an item follows itself;
- the incoming matrix row v holds v's predecessors, each weighted 1 / in-degree(v); the
  outgoing matrix row u holds u's successors, each 1 / out-degree(u) (the code's
  ``A = [A_in, A_out]``, its two n x n blocks; a node without edges has a zero row);
- each click position maps to its node, so that the nodes' states can be read back in click
  order.

The code pads every graph to the batch's largest and makes the padding item a node of every
padded prefix; that node has no edges and is masked out of the readout, so leaving it out (and
packing the graphs instead of padding them) changes no score. :meth:`PackedGraphs.dense` gives
one graph in the code's dense form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PackedGraphs", "session_graphs"]


@dataclass
class PackedGraphs:
    """The graphs of a batch of B prefixes, packed: R nodes in all, C real clicks, E edges.

    Attributes:
        node_item: int64[R], each node's item as an embedding row, graph by graph, ascending
            within a graph.
        node_graph: int64[R], the prefix each node belongs to.
        click_node: int64[C], the node of each real click, prefix by prefix in click order.
        click_row: int64[C], the prefix of each real click.
        src, dst: int64[E], the edges u -> v (as node positions), each distinct once.
        in_weight: float[E], 1 / in-degree(dst) of each edge (its weight in the incoming matrix).
        out_weight: float[E], 1 / out-degree(src) of each edge (its weight in the outgoing matrix).
    """

    node_item: torch.Tensor
    node_graph: torch.Tensor
    click_node: torch.Tensor
    click_row: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    in_weight: torch.Tensor
    out_weight: torch.Tensor

    def dense(self, graph: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One graph in the code's dense form: (items int64[n], incoming float[n, n], outgoing
        float[n, n], alias int64[length]) with node positions local to the graph."""
        first = int((self.node_graph < graph).sum())
        n = int((self.node_graph == graph).sum())
        edges = self.node_graph[self.src] == graph
        src, dst = self.src[edges] - first, self.dst[edges] - first
        incoming = torch.zeros(n, n, dtype=self.in_weight.dtype)
        outgoing = torch.zeros(n, n, dtype=self.out_weight.dtype)
        incoming[dst, src] = self.in_weight[edges]
        outgoing[src, dst] = self.out_weight[edges]
        return self.node_item[first : first + n], incoming, outgoing, self.click_node[self.click_row == graph] - first


def session_graphs(items: torch.Tensor, lengths: torch.Tensor, dtype: torch.dtype = torch.float32) -> PackedGraphs:
    """The session graph of every prefix of a batch, packed, without a Python loop over prefixes.

    Args:
        items: int64[B, L] clicks as embedding rows (item + 1), left-aligned, 0 after each
            prefix's length.
        lengths: int64[B] clicks per prefix (>= 1).
        dtype: Of the edge weights.
    """
    b, width = items.shape
    device = items.device
    real = torch.arange(width, device=device)[None, :] < lengths[:, None]
    row = torch.arange(b, device=device)[:, None].expand(b, width)
    span = int(items.max()) + 1 if items.numel() else 1
    # a node per distinct (prefix, item): sorted by prefix, then item, as np.unique sorts a prefix
    keys, click_node = torch.unique(row[real] * span + items[real], return_inverse=True)
    # consecutive real clicks -> one edge per distinct (u, v)
    nodes = torch.zeros(b, width, dtype=torch.int64, device=device)
    nodes[real] = click_node
    step = real[:, 1:]
    pairs = torch.unique(nodes[:, :-1][step] * len(keys) + nodes[:, 1:][step])
    src, dst = pairs // len(keys), pairs % len(keys)
    in_degree = torch.bincount(dst, minlength=len(keys)).to(dtype)
    out_degree = torch.bincount(src, minlength=len(keys)).to(dtype)
    return PackedGraphs(
        node_item=keys % span,
        node_graph=keys // span,
        click_node=click_node,
        click_row=row[real],
        src=src,
        dst=dst,
        in_weight=in_degree[dst].reciprocal(),
        out_weight=out_degree[src].reciprocal(),
    )
