"""Edge copy (Du et al. 2022): a complete directed graph with a value on every edge -> the same
values, read off per edge.

Representation (our choice: the graphs of one dataset have different node counts, and a dense
padded layout lets them stack into one tensor that the pipeline slices like any other):
inputs and targets are float32 of shape (count, 2, P, P) with P = ``pad_to`` nodes,
  channel 0: value of edge i -> j at [i, j] (0 where there is no edge),
  channel 1: edge mask, 1 for a real edge (i != j, both i and j < the graph's node count), else 0.
The target is the same tensor: the task is to reproduce channel 0 on the real edges, and the
loss needs the mask, which it can only see through the target. A node i is real iff it has an
outgoing edge (every graph has at least 2 nodes), see ``node_mask``.

Training draws the node count uniformly in [2, 10] per graph; the dataset paper's harder split has 15
nodes (the config chooses its own, ``harder_nodes``).
"""

from __future__ import annotations

import torch

TRAIN_NODES = (2, 10)
HARDER_NODES = (15, 15)
VALUE, MASK = 0, 1


def edge_mask(n_nodes: torch.Tensor, pad_to: int) -> torch.Tensor:
    """(count, P, P) float mask of the real edges of graphs with ``n_nodes`` nodes each."""
    idx = torch.arange(pad_to)
    real_node = idx < n_nodes.view(-1, 1)  # (count, P)
    no_loop = idx.view(-1, 1) != idx.view(1, -1)
    return (real_node.unsqueeze(2) & real_node.unsqueeze(1) & no_loop).float()


def generate(
    min_nodes: int, max_nodes: int, count: int, g: torch.Generator, pad_to: int | None = None
) -> dict[str, torch.Tensor]:
    """``count`` graphs with a node count uniform in [min_nodes, max_nodes], padded to ``pad_to``
    (default ``max_nodes``) nodes. Also returns ``n_nodes`` (count,) for bookkeeping."""
    pad_to = max_nodes if pad_to is None else pad_to
    if not 2 <= min_nodes <= max_nodes <= pad_to:
        raise ValueError(f"need 2 <= min_nodes <= max_nodes <= pad_to, got {min_nodes}, {max_nodes}, {pad_to}")
    n_nodes = torch.randint(min_nodes, max_nodes + 1, (count,), generator=g)
    mask = edge_mask(n_nodes, pad_to)
    values = (torch.rand(count, pad_to, pad_to, generator=g) * 2 - 1) * mask
    graphs = torch.stack([values, mask], dim=1)
    return {"inputs": graphs, "targets": graphs.clone(), "n_nodes": n_nodes}


def node_mask(graphs: torch.Tensor) -> torch.Tensor:
    """(N, P) float mask of the real nodes of padded graphs (N, 2, P, P)."""
    return graphs[:, MASK].amax(dim=2)


def model_input(graphs: torch.Tensor) -> torch.Tensor:
    return graphs.float()
