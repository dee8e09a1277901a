"""Where each example's iteration ends up: a fixed point, a limit cycle (and its period), or neither.

anil2022 counts a net as path independent when it reaches the same *steady state* from any start,
and a steady state may be an attractor other than a point: some of their nets settle in limit cycles
(appendix F/G, item ``fig_convergence_traces``). The one-step residual of a cycling net never goes to
zero, so a residual trace alone cannot tell "cycling" from "still moving"; the return distance
``||z_t - z_{t-p}|| / ||z_t||`` can.

Everything takes any step function f(z, x), so it can be checked on toy maps with known answers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch

from implicit_repro.iteration import Step, relative_residual

# Codes of ``Classification.kind`` (a tensor, so a whole batch is classified at once).
MOVING, FIXED_POINT, CYCLE = 0, 1, 2
KIND_NAMES = {MOVING: "moving", FIXED_POINT: "fixed_point", CYCLE: "cycle"}


@dataclass(frozen=True)
class Classification:
    kind: torch.Tensor  # (B,) long: MOVING (not settled: still moving, chaotic, diverging), FIXED_POINT, CYCLE
    period: torch.Tensor  # (B,) long: 1 for a fixed point, p >= 2 for a cycle, 0 when moving

    def names(self) -> list[str]:
        return [KIND_NAMES[int(k)] for k in self.kind]


def tail_length(max_period: int, window: int) -> int:
    """States needed to test every period up to ``max_period`` at each of the last ``window`` steps."""
    return window + max_period


def _return_distance(tail: torch.Tensor, p: int) -> torch.Tensor:
    """(T - p, B): ||z_t - z_{t-p}|| / ||z_t|| for every t of the tail that has a state p back."""
    now, before = tail[p:].flatten(2), tail[:-p].flatten(2)
    return (now - before).norm(dim=2) / now.norm(dim=2).clamp_min(1e-12)


def classify_tail(
    tail: torch.Tensor, tol: float = 1e-3, max_period: int = 8, window: int | None = None,
    min_cycle_residual: float | None = None, max_decay: float = 0.05,
) -> Classification:
    """Classify each example from the last states of its trajectory, ``tail`` of shape (T, B, ...).

    Period p fits an example when the return distance p steps back stays below ``tol`` at every one
    of the last ``window`` steps (default: all the tail allows, ``T - max_period``); requiring the
    whole window, not one step, keeps a chaotic orbit's chance near-returns out. The smallest
    fitting p is the period (2p, 3p, ... fit as well); p = 1 is a fixed point.

    A p >= 2 counts as a cycle only if the orbit keeps moving at a steady pace: the one-step
    residual stays at least ``min_cycle_residual`` (default 10 tol) over the window, and its mean
    over the window's last p steps is at least (1 - ``max_decay``) times its mean over the first p.
    A state still spiralling slowly into a fixed point also returns to within ``tol`` of where it was
    p steps earlier, but its steps shrink; it is "moving", not a cycle. (A spiral slower than
    ``max_decay`` per window is a cycle at this resolution: lengthen the window to tell them apart.)
    """
    if max_period < 1:
        raise ValueError("max_period must be at least 1")
    steps = len(tail)
    window = steps - max_period if window is None else window
    if window < 1 or steps < tail_length(max_period, window):
        raise ValueError(
            f"a tail of {steps} states cannot test periods up to {max_period} over a window of {window} "
            f"steps; it needs {tail_length(max_period, max(window, 1))}"
        )
    min_cycle_residual = 10 * tol if min_cycle_residual is None else min_cycle_residual
    batch = tail.shape[1]
    kind = torch.full((batch,), MOVING, dtype=torch.long, device=tail.device)
    period = torch.zeros(batch, dtype=torch.long, device=tail.device)
    one_step = _return_distance(tail, 1)[-window:]  # (window, B)
    keeps_moving = one_step.min(dim=0).values >= min_cycle_residual
    for p in range(1, max_period + 1):
        fits = (_return_distance(tail, p)[-window:] < tol).all(dim=0)
        if p > 1:
            steady = one_step[-p:].mean(dim=0) >= (1 - max_decay) * one_step[:p].mean(dim=0)
            fits &= keeps_moving & steady
        new = fits & (kind == MOVING)  # the smallest fitting period wins
        kind[new] = FIXED_POINT if p == 1 else CYCLE
        period[new] = p
    return Classification(kind, period)


@torch.no_grad()
def trace_and_classify(
    step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int, tol: float = 1e-3, max_period: int = 8,
    window: int = 16, min_cycle_residual: float | None = None, max_decay: float = 0.05,
) -> dict:
    """Run ``iters`` steps from z0. Returns the per-iteration relative residual ``residual`` (iters, B)
    (the curve of ``fig_convergence_traces``), the ``classification`` of where each example ended,
    and the final state ``z``. Only the last ``window + max_period`` states are kept, so memory does
    not grow with ``iters``."""
    keep = tail_length(max_period, window)
    if iters + 1 < keep:
        raise ValueError(f"{iters} iterations give {iters + 1} states; classifying needs at least {keep}")
    tail: deque[torch.Tensor] = deque([z0], maxlen=keep)
    residual = []
    z = z0
    for _ in range(iters):
        z_next = step(z, x)
        residual.append(relative_residual(z_next, z))
        tail.append(z_next)
        z = z_next
    classification = classify_tail(
        torch.stack(list(tail)), tol, max_period, window, min_cycle_residual, max_decay
    )
    return {"residual": torch.stack(residual), "classification": classification, "z": z}
