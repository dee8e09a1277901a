"""Forward fixed-point solvers: find z with f(z) = z, and say how hard it was.

Every solver takes f(z) (a closure over the input x and the parameters), a batch-first z0 of any
shape, ``max_iter`` and a relative tolerance ``tol``; it stops once every example of the batch has
||f(z) - z|| / ||f(z)|| < tol (torchdeq's rule: the batch stops together) and returns the solution
and a :class:`SolverStats`. No solver builds a graph: gradients are attached afterwards
(``implicit_repro.deq.gradients``).

Fixed-point iteration and Broyden's method are torchdeq's. Anderson acceleration is our own, in
torchdeq's layout, for one reason: torchdeq regularizes the Anderson least-squares problem with an
*absolute* ``lam * I`` (default 1e-4) added to the Gram matrix of the residuals. Once the squared
residual norms fall below ``lam`` the mixing weights become uniform and Anderson is *slower* than
plain iteration on small states (the slowly contracting 16-d linear map of tests/test_deq.py to
rel. tol 1e-8 in float64: 647 evaluations against 302 for plain iteration, 44 for ours). Ours
scales ``lam`` by the Gram matrix's mean diagonal, so the method does not depend on the scale of
z. On large states (a 64x32 conv cell, batch 8) both take the same number of evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torchdeq.solver import broyden_solver, fixed_point_iter

from implicit_repro.iteration import relative_residual

Map = Callable[[torch.Tensor], torch.Tensor]

SOLVERS = ("fixed_point", "anderson", "broyden")
# torchdeq's solvers swallow unknown keyword arguments; we refuse them, so a typo is not ignored.
# No damping for fixed-point iteration: torchdeq would then test and report the damped step
# tau (f(z) - z) rather than f(z) - z (Anderson with ``tau`` damps and measures f(z) - z).
SOLVER_KWARGS = {"fixed_point": set(), "anderson": {"m", "lam", "tau"}, "broyden": {"ls", "LBFGS_thres"}}


@dataclass
class SolverStats:
    """What a solve cost and how far it got. Tensors are detached, on z's device."""

    nfe: int  # evaluations of f
    # (B,) relative residual ||f(x) - x|| / ||f(x)|| of the best point x the solver evaluated; the
    # returned z is f(x) for fixed-point iteration and Anderson, x itself for Broyden.
    residual: torch.Tensor
    trace: torch.Tensor  # (B, nfe) relative residual at every point f was evaluated, in order


class _Counted:
    """f, counting its evaluations and recording the relative residual at each point, so every
    solver reports the same measure (torchdeq pads its traces to max_iter and does not count)."""

    def __init__(self, f: Map):
        self.f = f
        self.nfe = 0
        self.trace: list[torch.Tensor] = []

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        fz = self.f(z)
        self.nfe += 1
        b = len(z)
        self.trace.append(relative_residual(fz.reshape(b, -1), z.reshape(b, -1)))
        return fz

    def stats(self, residual: torch.Tensor) -> SolverStats:
        trace = torch.stack(self.trace, dim=1) if self.trace else residual.new_zeros(len(residual), 0)
        return SolverStats(self.nfe, residual.detach(), trace.detach())


def _anderson(f: Map, z0: torch.Tensor, max_iter: int, tol: float,
              m: int = 6, lam: float = 1e-4, tau: float = 1.0,
              on_step: Callable[[torch.Tensor], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Anderson acceleration (type II, torchdeq's bordered formulation) with a scale-relative
    regularizer. Returns the best image f(x) per example and its point's relative residual.
    ``on_step``, if given, sees after every evaluation what a solve stopped there would return."""
    bsz = z0.shape[0]
    flat = lambda x: f(x.view_as(z0)).reshape(bsz, -1)  # noqa: E731
    x0 = z0.reshape(bsz, -1)
    m = max(1, min(m, max_iter))
    X = x0.new_zeros(bsz, m, x0.shape[1])
    F = torch.zeros_like(X)
    H = x0.new_zeros(bsz, m + 1, m + 1)
    H[:, 0, 1:] = H[:, 1:, 0] = 1
    y = x0.new_zeros(bsz, m + 1, 1)
    y[:, 0] = 1

    best = best_res = None
    for k in range(max_iter):
        if k == 0:
            x = x0
        elif k == 1 or m == 1:
            x = F[:, (k - 1) % m]  # plain iteration until there are two points to mix
        else:
            n = min(k, m)
            G = F[:, :n] - X[:, :n]
            gram = torch.bmm(G, G.transpose(1, 2))
            scale = gram.diagonal(dim1=1, dim2=2).mean(1)
            H[:, 1:n + 1, 1:n + 1] = gram + lam * scale[:, None, None] * torch.eye(n, dtype=x0.dtype, device=x0.device)
            sol, info = torch.linalg.solve_ex(H[:, :n + 1, :n + 1], y[:, :n + 1])
            alpha = sol[:, 1:n + 1, 0]
            # A singular system (every stored residual exactly zero) gets a plain iteration step.
            ok = (info == 0) & torch.isfinite(alpha).all(1)
            plain = torch.zeros_like(alpha)
            plain[:, (k - 1) % m] = 1  # the last point's image
            alpha = torch.where(ok[:, None], alpha, plain)
            x = tau * (alpha[:, None] @ F[:, :n])[:, 0] + (1 - tau) * (alpha[:, None] @ X[:, :n])[:, 0]
        fx = flat(x)
        res = relative_residual(fx, x)  # before storing: x may be a view of the slot fx goes to
        X[:, k % m], F[:, k % m] = x, fx
        if best is None:
            best, best_res = fx.clone(), res
        else:
            better = res < best_res
            best = torch.where(better[:, None], fx, best)
            best_res = torch.where(better, res, best_res)
        if on_step is not None:
            on_step(best.view_as(z0))
        if best_res.max() < tol:
            break
    return best.view_as(z0), best_res


@torch.no_grad()
def read_every_budget(f: Map, z0: torch.Tensor, max_iter: int, tol: float, read: Callable[[torch.Tensor], float],
                      solver: str = "anderson", **solver_kwargs) -> list[float]:
    """``read`` of the point ``solve(f, z0, solver, k, tol)`` returns, for every budget k = 1..max_iter,
    from one solve instead of max_iter of them (max_iter² / 2 evaluations of f).

    Exact for Anderson: its iterates do not depend on ``max_iter`` (the history holds min(m, k) points
    either way, in the same slots), a solve allowed k evaluations returns the best point of the first k,
    and the batch stops together, so a budget past the stop reads the stopping point. The solvers
    borrowed from torchdeq expose no such hook; ``solver`` must be "anderson"."""
    if solver != "anderson":
        raise ValueError(f"read_every_budget reads Anderson's solves only, not {solver!r}: "
                         "solve once per budget instead")
    readings: list[float] = []
    _anderson(f, z0, max_iter, tol, **solver_kwargs, on_step=lambda z: readings.append(read(z)))
    return readings + readings[-1:] * (max_iter - len(readings))


@torch.no_grad()
def solve(f: Map, z0: torch.Tensor, solver: str = "anderson", max_iter: int = 40, tol: float = 1e-3,
          **solver_kwargs) -> tuple[torch.Tensor, SolverStats]:
    """Find z = f(z) from z0 in at most ``max_iter`` evaluations of f (Broyden: at least 2).

    ``solver_kwargs`` go to the solver (see SOLVER_KWARGS): ``m`` (history), ``lam`` (relative
    regularizer), ``tau`` (mixing damping) for Anderson; ``ls`` (line search, whose extra
    evaluations are counted but not bounded by max_iter), ``LBFGS_thres`` for Broyden."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; known: {', '.join(SOLVERS)}")
    if max_iter < (2 if solver == "broyden" else 1):
        raise ValueError(f"{solver} needs max_iter of at least {2 if solver == 'broyden' else 1}, got {max_iter}")
    unknown = set(solver_kwargs) - SOLVER_KWARGS[solver]
    if unknown:
        raise ValueError(f"{solver} takes no {', '.join(sorted(unknown))}; it takes "
                         f"{', '.join(sorted(SOLVER_KWARGS[solver])) or 'no solver_kwargs'}")
    counted = _Counted(f)
    if solver == "anderson":
        z, residual = _anderson(counted, z0, max_iter, tol, **solver_kwargs)
        return z, counted.stats(residual)
    # torchdeq's solvers: stop_mode="rel" makes ``tol`` relative and the kept "lowest" point the
    # one with the lowest relative residual, which is what ``rel_lowest`` then reports.
    # ``max_iter`` bounds the evaluations of f for every solver (a fair NFE budget); torchdeq's
    # Broyden evaluates f(z0) before its max_iter steps, so it gets one step less.
    if solver == "fixed_point":
        z, _, info = fixed_point_iter(counted, z0, max_iter=max_iter, tol=tol, stop_mode="rel", **solver_kwargs)
    else:
        z, _, info = broyden_solver(counted, z0, max_iter=max_iter - 1, tol=tol, stop_mode="rel", **solver_kwargs)
    return z, counted.stats(info["rel_lowest"].to(z.dtype))
