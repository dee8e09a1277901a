"""Mazes (Schwarzschild et al. 2021): a maze image -> the pixels of the path from start to goal.

A maze of size S has c = (S+1)/2 cells per side and is a perfect maze (a spanning tree of the cell
grid) carved by a randomized depth-first search, the recursive backtracker. Start and goal are two
distinct random cells; the target is the unique path between them.

Image layout. The maze is drawn on a (2c+1)^2 raster: cell (i, j) sits at (2i+1, 2j+1), the passage
between two neighbouring cells at the raster pixel between them, everything else is wall. Each
raster pixel becomes a 2x2 block and a 1-pixel wall border goes around it, so the image side is
2(2c+1) + 2 = 2S + 6 (S=9 -> 24, 13 -> 32, 59 -> 124).

Stored format, compact uint8:
- ``inputs`` (N, 3, H, W) in {0, 1}: walls (0,0,0), corridors (1,1,1), start (0,1,0) green, goal
  (1,0,0) red; start and goal colour the whole 2x2 block of their cell.
- ``targets`` (N, H, W): 1 on the path (start and goal cells and every corridor pixel between
  them), 0 on the other corridor pixels, and WALL (255) on walls. The training and evaluation code
  hands a task only the targets, so the wall mask the loss and the metric need travels inside them;
  255 doubles as cross-entropy's ``ignore_index``.

Unlike the original, every draw comes from one seeded torch.Generator, in a fixed order.
"""

from __future__ import annotations

import numpy as np
import torch

WALL = 255  # target value on wall pixels: ignored by the loss and the metric


def image_side(size: int) -> int:
    return 2 * size + 6


def _check_size(size: int) -> int:
    if size < 3 or size % 2 == 0:
        raise ValueError(f"maze size must be odd and at least 3 (two cells per side), got {size}")
    return (size + 1) // 2


def _neighbours(c: int) -> list[list[int]]:
    """Cell indices k = i*c + j adjacent to each cell, in a fixed order (up, down, left, right)."""
    out = []
    for k in range(c * c):
        i, j = divmod(k, c)
        out.append([a * c + b for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                    if 0 <= a < c and 0 <= b < c])
    return out


def _backtracker(neighbours: list[list[int]], root: int, draws: np.ndarray) -> tuple[list[int], list[int]]:
    """Parent and depth of every cell in the tree carved by an iterative recursive backtracker.

    From the cell on top of the stack, carve into a uniformly chosen unvisited neighbour; with none
    left, backtrack. Each of the n-1 carves consumes one uniform draw in [0, 1)."""
    parent, depth = [-1] * len(neighbours), [-1] * len(neighbours)
    depth[root] = 0
    stack, used = [root], 0
    while stack:
        k = stack[-1]
        free = [m for m in neighbours[k] if depth[m] < 0]
        if not free:
            stack.pop()
            continue
        m = free[int(draws[used] * len(free))]
        used += 1
        parent[m], depth[m] = k, depth[k] + 1
        stack.append(m)
    return parent, depth


def _tree_path(parent: list[int], depth: list[int], a: int, b: int) -> list[int]:
    """The unique cell path a -> b in a rooted tree: climb from both ends to their common ancestor."""
    head, tail = [a], [b]
    while head[-1] != tail[-1]:
        if depth[head[-1]] >= depth[tail[-1]]:
            head.append(parent[head[-1]])
        else:
            tail.append(parent[tail[-1]])
    return head + tail[-2::-1]


def _blow_up(raster: np.ndarray, border_value: int) -> np.ndarray:
    """(..., r, r) -> (..., 2r+2, 2r+2): every pixel a 2x2 block, inside a 1-pixel border."""
    big = raster.repeat(2, axis=-2).repeat(2, axis=-1)
    pad = [(0, 0)] * (big.ndim - 2) + [(1, 1), (1, 1)]
    return np.pad(big, pad, constant_values=border_value)


def generate(size: int, count: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """``count`` mazes of size ``size`` with their path targets (see the module docstring)."""
    c = _check_size(size)
    n, side = c * c, 2 * c + 1
    # All randomness up front, from g only: DFS root, start, goal, one draw per carve.
    root = torch.randint(n, (count,), generator=g).tolist()
    start = torch.randint(n, (count,), generator=g)
    goal = torch.randint(n - 1, (count,), generator=g)
    goal = (goal + (goal >= start).long()).tolist()  # uniform over the cells other than start
    start = start.tolist()
    draws = torch.rand((count, n - 1), generator=g, dtype=torch.float64).numpy()

    neighbours = _neighbours(c)
    raster = np.zeros((count, side, side), dtype=np.uint8)
    raster[:, 1::2, 1::2] = 1  # every cell is open
    path = np.zeros_like(raster)
    for e in range(count):
        parent, depth = _backtracker(neighbours, root[e], draws[e])
        # A passage between cells k and m is the raster pixel between them: (i_k + i_m + 1, ...).
        kids = np.array([k for k in range(n) if parent[k] >= 0])
        par = np.array([parent[k] for k in kids])
        raster[e, kids // c + par // c + 1, kids % c + par % c + 1] = 1
        cells = np.array(_tree_path(parent, depth, start[e], goal[e]))
        ci, cj = 2 * (cells // c) + 1, 2 * (cells % c) + 1
        path[e, ci, cj] = 1
        path[e, (ci[1:] + ci[:-1]) // 2, (cj[1:] + cj[:-1]) // 2] = 1  # passages along the path

    corridor = _blow_up(raster, 0)
    inputs = np.repeat(corridor[:, None], 3, axis=1)
    rows = np.arange(count)
    for cell, keep in ((np.array(start), 1), (np.array(goal), 0)):  # green keeps G, red keeps R
        top, left = 4 * (cell // c) + 3, 4 * (cell % c) + 3
        for dy in (0, 1):
            for dx in (0, 1):
                for ch in (0, 1, 2):
                    inputs[rows, ch, top + dy, left + dx] = int(ch == keep)
    targets = np.where(corridor == 1, _blow_up(path, 0), WALL).astype(np.uint8)
    return {"inputs": torch.from_numpy(inputs), "targets": torch.from_numpy(targets)}


def model_input(inputs: torch.Tensor) -> torch.Tensor:
    """Network input of the spec: the 0/1 colour image as floats, shape (N, 3, H, W)."""
    return inputs.float()


def non_wall_mask(inputs: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool, True where the image is not wall: walls are the only black pixels."""
    return inputs.amax(dim=1) > 0


def path_mask(targets: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool, True on the path (the stored targets also mark walls with WALL)."""
    return targets == 1
