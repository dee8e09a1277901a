"""Deep-equilibrium machinery behind one call: a forward solver, a gradient, and stats.

    z, stats = deq_fixed_point(lambda z: cell(z, x), z0, solver="anderson", grad="ift")

f may be any closure over tensors with a batch-first state of any shape ((B, D), (B, C, L),
(B, C, H, W), ...). Solvers (``solvers``), gradients (``gradients``) and the Jacobian penalty
(``regularizers``) are separate small modules; this module only wires them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from implicit_repro.deq.gradients import GRADS, attach_gradient, unrolled
from implicit_repro.deq.regularizers import jacobian_frobenius, jacobian_penalty
from implicit_repro.deq.solvers import SOLVERS, Map, SolverStats, solve

__all__ = [
    "DEQStats", "GRADS", "SOLVERS", "SolverStats", "deq_fixed_point", "jacobian_frobenius",
    "jacobian_penalty", "solve",
]


@dataclass
class DEQStats:
    forward: SolverStats  # the forward solve (for "unrolled": the unrolled iterations)
    grad_nfe: int = 0  # evaluations of f the gradient added to the forward pass
    # The IFT adjoint solve, set once backward has run; its nfe counts vector-Jacobian products
    # (torchdeq's backward also re-evaluates f(z*) once to build them).
    backward: SolverStats | None = None

    @property
    def nfe(self) -> int:
        return self.forward.nfe

    @property
    def residual(self) -> torch.Tensor:
        return self.forward.residual

    @property
    def trace(self) -> torch.Tensor:
        return self.forward.trace


def deq_fixed_point(
    f: Map,
    z0: torch.Tensor,
    solver: str = "anderson",
    grad: str = "ift",
    max_iter: int = 40,
    tol: float = 1e-3,
    phantom_steps: int = 5,
    phantom_damping: float = 0.5,
    backward_solver: str | None = None,
    backward_max_iter: int | None = None,
    backward_tol: float | None = None,
    solver_kwargs: dict | None = None,
) -> tuple[torch.Tensor, DEQStats]:
    """The fixed point z = f(z) reached from z0, carrying the ``grad`` gradient.

    solver: "fixed_point", "anderson" or "broyden", run to relative residual ``tol`` or
        ``max_iter`` evaluations; ``solver_kwargs`` go to it (see ``solvers.solve``).
    grad: "ift", "phantom" (``phantom_steps`` steps of damping ``phantom_damping``), "jfb", or
        "unrolled" (exactly ``max_iter`` applications of f with the graph kept; needs
        solver="fixed_point", ignores ``tol``).
    backward_*: the IFT adjoint solve; by default the forward solver, ``max_iter`` and ``tol``.

    With gradients disabled (``torch.no_grad()``, evaluation) no gradient is attached and the
    solver's z is returned as is; with them, ift/jfb return f(z*) and phantom its damped steps,
    equal to z* up to the solver's tolerance.
    """
    if grad not in GRADS:
        raise ValueError(f"unknown grad {grad!r}; known: {', '.join(GRADS)}")
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; known: {', '.join(SOLVERS)}")
    if grad == "unrolled":
        if solver != "fixed_point":
            raise ValueError(f"grad='unrolled' backprops through plain iteration; pass "
                             f"solver='fixed_point', not {solver!r}")
        z, stats = unrolled(f, z0, max_iter)
        return z, DEQStats(stats)

    z_star, forward = solve(f, z0, solver, max_iter, tol, **(solver_kwargs or {}))
    stats = DEQStats(forward)
    if not torch.is_grad_enabled():
        return z_star, stats
    adjoint = partial(
        solve,
        solver=backward_solver or solver,
        max_iter=backward_max_iter or max_iter,
        tol=tol if backward_tol is None else backward_tol,
    )

    def record(backward: SolverStats) -> None:
        stats.backward = backward

    z, stats.grad_nfe = attach_gradient(
        f, z_star, grad, phantom_steps=phantom_steps, phantom_damping=phantom_damping,
        adjoint_solve=adjoint, on_backward=record,
    )
    return z, stats

