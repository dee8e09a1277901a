"""Gradients through a fixed point: which estimate of dz*/dθ the backward pass carries.

- "ift": implicit differentiation. The backward pass solves the adjoint fixed point
  g = g J_f(z*) + dL/dz* and hands g to f(z*)'s graph, so memory does not grow with the solver.
- "phantom": k damped steps z <- (1-λ) z + λ f(z) from the detached z*, backprop through them.
  As k grows (for a contraction) this tends to the IFT gradient.
- "jfb": one application of f from the detached z* (Jacobian-free backprop; phantom, k=1, λ=1).
- "unrolled": plain backprop through every forward iteration, no solver (weight-tied nets).

ift, phantom and jfb are torchdeq's (``torchdeq.grad.backward_factory``, the functors its
``get_deq`` cores compose), driven directly: ``get_deq`` is a stateful module whose behaviour follows
``.training``, takes solvers only by name from a global registry, and reports no evaluation counts.
"unrolled" is our own loop: torchdeq's solvers detach every iterate, so nothing there backprops
through a forward solve.
"""

from __future__ import annotations

from typing import Callable

import torch
from torchdeq.grad import backward_factory
from torchdeq.utils.layer_utils import deq_decorator

from implicit_repro.deq.solvers import Map, SolverStats
from implicit_repro.iteration import relative_residual

GRADS = ("ift", "phantom", "jfb", "unrolled")
ATTACHED = ("ift", "phantom", "jfb")  # the ones that start from a solved, detached z*

# (map, start) -> (solution, stats); the IFT backward solves g = map(g) from g = 0 with it.
AdjointSolve = Callable[[Map, torch.Tensor], tuple[torch.Tensor, SolverStats]]


def _torchdeq_solver(adjoint_solve: AdjointSolve):
    """Our solve in torchdeq's solver signature, (func, x0, **kw) -> (z, trajectory, info)."""
    def b_solver(func, x0, **_):
        g, stats = adjoint_solve(func, x0)
        return g, [], stats
    return b_solver


def attach_gradient(
    f: Map, z_star: torch.Tensor, grad: str, *, phantom_steps: int = 5, phantom_damping: float = 0.5,
    adjoint_solve: AdjointSolve | None = None, on_backward: Callable[[SolverStats], None] | None = None,
) -> tuple[torch.Tensor, int]:
    """A tensor equal to the fixed point (up to the solver's tolerance) whose backward carries the
    ``grad`` estimate, and the number of evaluations of f this spent in the forward pass.

    ``on_backward`` receives the adjoint solve's stats when an IFT backward pass runs."""
    if grad not in ATTACHED:
        raise ValueError(f"attach_gradient takes one of {', '.join(ATTACHED)}, got {grad!r}")
    func, z_star = deq_decorator(f, z_star.detach())  # torchdeq's f(z, tau) for damped steps
    if grad == "ift":
        if adjoint_solve is None:
            raise ValueError("grad='ift' needs an adjoint_solve for its backward pass")
        produce, nfe = backward_factory("ift", b_solver=_torchdeq_solver(adjoint_solve)), 1
    elif grad == "phantom":
        if phantom_steps < 1 or not 0 < phantom_damping <= 1:
            raise ValueError(f"phantom needs steps >= 1 and damping in (0, 1], got "
                             f"{phantom_steps} and {phantom_damping}")
        produce, nfe = backward_factory(phantom_steps, tau=phantom_damping), phantom_steps
    else:
        produce, nfe = backward_factory(1, tau=1.0), 1
    (z,) = produce(None, func, z_star, writer=on_backward)
    return z, nfe


def unrolled(f: Map, z0: torch.Tensor, iters: int) -> tuple[torch.Tensor, SolverStats]:
    """``iters`` applications of f from z0, the graph kept through all of them. No tolerance: a
    weight-tied net of depth L runs exactly L steps. Stats follow the solvers' convention: the
    residual is that of the last point f was applied to."""
    if iters < 1:
        raise ValueError(f"unrolled needs at least one iteration, got {iters}")
    z, trace = z0, []
    b = len(z0)
    for _ in range(iters):
        z_next = f(z)
        trace.append(relative_residual(z_next.detach().reshape(b, -1), z.detach().reshape(b, -1)))
        z = z_next
    stacked = torch.stack(trace, dim=1)
    return z, SolverStats(iters, stacked[:, -1], stacked)
