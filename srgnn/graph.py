"""SR-GNN's session graphs, built for a whole batch of padded prefixes at once.

For each prefix (the authors' ``utils.py``, ``Data.get_slice``, CRIPAC-DIG/SR-GNN at e21cfa4):

- the nodes are its distinct items in ascending order;
- an edge u -> v joins every pair of consecutive clicks, counted once however often the
  transition repeats (the code's 0/1 adjacency; the paper's section 3.2 speaks of counts),
  a self-loop only where an item follows itself;
- the incoming matrix row v holds v's predecessors, each weighted 1 / in-degree(v); the
  outgoing matrix row u holds u's successors, each 1 / out-degree(u) (the code's
  ``A = [A_in, A_out]``, its two n x n blocks; a node without edges has a zero row);
- ``alias`` maps each click position to its node, so that the nodes' states can be read
  back in click order.

The code also makes the padding item a node of every padded prefix; it has no edges and is
masked out of the readout, so leaving it out changes no score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SessionGraphs", "session_graphs"]


@dataclass
class SessionGraphs:
    """The graphs of a batch of B prefixes with at most N distinct items each.

    Attributes:
        nodes: int64[B, N], each graph's items as embedding rows (0 where a graph has fewer).
        incoming: float[B, N, N], row v: v's predecessors weighted 1 / in-degree(v).
        outgoing: float[B, N, N], row u: u's successors weighted 1 / out-degree(u).
        alias: int64[B, L], the node of each click position (0 on padding).
    """

    nodes: torch.Tensor
    incoming: torch.Tensor
    outgoing: torch.Tensor
    alias: torch.Tensor


def session_graphs(items: torch.Tensor, lengths: torch.Tensor, dtype: torch.dtype = torch.float32) -> SessionGraphs:
    """The session graph of every prefix of a batch, without a Python loop over prefixes.

    Args:
        items: int64[B, L] clicks as embedding rows (item + 1), left-aligned, 0 after each
            prefix's length.
        lengths: int64[B] clicks per prefix (>= 1).
        dtype: Of the two weight matrices.
    """
    b, width = items.shape
    device = items.device
    real = torch.arange(width, device=device)[None, :] < lengths[:, None]
    big = torch.iinfo(torch.int64).max
    ordered = torch.where(real, items, big).sort(dim=1).values
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first &= ordered != big
    n_nodes = int(first.sum(1).max())
    slot = first.cumsum(1) - 1  # the node each sorted position belongs to
    rows = torch.arange(b, device=device)[:, None].expand_as(ordered)
    keys = torch.full((b, n_nodes), big, dtype=torch.int64, device=device)
    keys[rows[first], slot[first]] = ordered[first]  # each graph's distinct items, ascending
    nodes = torch.where(keys == big, 0, keys)
    alias = torch.searchsorted(keys, torch.where(real, items, big).contiguous()).clamp_max(n_nodes - 1)
    alias = torch.where(real, alias, 0)
    # one edge per consecutive pair of real clicks, set (not added): the code's 0/1 adjacency
    step = real[:, 1:]
    adjacency = torch.zeros(b, n_nodes, n_nodes, dtype=dtype, device=device)
    src, dst = alias[:, :-1][step], alias[:, 1:][step]
    adjacency[rows[:, 1:][step], src, dst] = 1.0
    in_degree = adjacency.sum(1).clamp_min(1.0)  # [B, N]: edges into each v
    out_degree = adjacency.sum(2).clamp_min(1.0)  # [B, N]: edges out of each u
    incoming = adjacency.transpose(1, 2) / in_degree[:, :, None]
    outgoing = adjacency / out_degree[:, :, None]
    return SessionGraphs(nodes, incoming, outgoing, alias)
