"""One zero-init trajectory per example, read many ways: accuracy at every test-time iteration count
1..K, the residual at each, and the states other measurements start from.

Running the model once per K would cost K(K+1)/2 cell applications; reading the head off each state
of one trajectory costs K. The same trajectory also holds what AA's first solve, the dynamics
classification and the residual traces need (``Readings``), so an evaluation computes it once.

Early exit (``tol``, see ``iteration.settled``): an example whose state stops changing stops being
iterated, and every series it would have produced is filled in from its final state (its
correctness stays that of the final state, its residual the last one measured, an upper bound of
what the full run would go on to measure, its kept states the final state). With ``tol`` 0 only a
state that repeats to the bit stops, and the rest then run as a smaller batch: exactly the full run
wherever the cell's arithmetic does not depend on the batch's size (measured on one CPU: convolutions
from 3 rows, a matrix product from 7). ``Sweep.computed`` counts the example-steps computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from implicit_repro.iteration import relative_residual, settled
from implicit_repro.models import EquilibriumModel
from implicit_repro.tasks import Task


@dataclass(frozen=True)
class Readings:
    """What a sweep keeps beyond per-example correctness and residual: the states of the first
    ``keep`` examples after each iteration count in ``at`` (AA's first solve), and their last
    ``tail`` states z_{K-tail+1}..z_K (z_0 too when K < tail), for the dynamics classification."""

    keep: int = 0
    at: tuple[int, ...] = ()
    tail: int = 0


@dataclass
class Sweep:
    correct: torch.Tensor  # (K, N) bool: right after k + 1 iterations
    residual: torch.Tensor  # (K, N): relative residual of iteration k + 1
    states: dict[int, torch.Tensor] = field(default_factory=dict)  # iteration -> (keep, ...) states
    tail: torch.Tensor | None = None  # (tail, keep, ...)
    computed: int = 0  # example-steps computed (K * N without early exit)

    @property
    def budget(self) -> int:
        """Example-steps of the full run."""
        return self.correct.numel()


@torch.no_grad()
def trajectory_sweep(
    model: EquilibriumModel, task: Task, x: torch.Tensor, targets: torch.Tensor, max_iters: int,
    z0: torch.Tensor | None = None, readings: Readings = Readings(), tol: float | None = None,
) -> Sweep:
    """The sweep of one batch (see the module's docstring); ``z0`` defaults to the model's init."""
    if tol is not None and getattr(model, "step_varies", False):
        raise ValueError("early exit needs the same step at every iteration; this model's steps differ "
                         "(untied blocks or distinct masks): pass tol=None")
    n, k_max = len(x), max_iters
    keep = min(readings.keep, n)
    z = model.initial_state(x) if z0 is None else z0
    correct = torch.zeros(k_max, n, dtype=torch.bool, device=x.device)
    residual = torch.zeros(k_max, n, device=x.device)
    computed = torch.zeros(k_max, n, dtype=torch.bool, device=x.device)
    first_tail = k_max + 1 - readings.tail if readings.tail else k_max + 1  # state index of the tail's first
    kept = z[:keep].clone()  # the first `keep` examples' current states (final ones once they exit)
    states, tail = {}, []

    def read(i: int) -> None:
        """Record the kept states after iteration i (0: the start)."""
        if i in readings.at:
            states[i] = kept.clone()
        if i >= first_tail:
            tail.append(kept.clone())

    read(0)
    active = torch.arange(n, device=x.device)  # ascending: removing examples keeps it sorted
    xa, ta, steps = x, targets, 0
    for i in range(1, k_max + 1):
        z_next = model.step(z, xa, i - 1)
        r = relative_residual(z_next, z)
        residual[i - 1, active] = r
        correct[i - 1, active] = task.correct(model.readout(z_next), ta)
        computed[i - 1, active] = True
        steps += len(active)
        done = settled(z_next, z, r, tol)
        z = z_next
        if keep and (i in readings.at or i >= first_tail or done.any()):
            m = int((active < keep).sum())  # the kept examples still iterating lead `active`
            kept[active[:m]] = z[:m]
        read(i)
        if done.any():
            still = ~done
            active, z, xa, ta = active[still], z[still], xa[still], ta[still]
            if len(active) == 0:
                for j in range(i + 1, k_max + 1):  # every example settled: the rest repeat the final states
                    read(j)
                break
    # Fill each exited example's later iterations from its last computed one.
    index = torch.arange(k_max, device=x.device).unsqueeze(1).expand(k_max, n)
    last = torch.where(computed, index, torch.zeros_like(index)).cummax(0).values
    return Sweep(correct.gather(0, last), residual.gather(0, last), states,
                 torch.stack(tail) if tail else None, steps)


@torch.no_grad()
def batched_sweep(
    model: EquilibriumModel, task: Task, x: torch.Tensor, targets: torch.Tensor, max_iters: int,
    batch_size: int, readings: Readings = Readings(), tol: float | None = None,
) -> Sweep:
    """``trajectory_sweep`` over batches of ``batch_size`` examples, joined; the kept states are
    those of the first ``readings.keep`` examples, whichever batches hold them."""
    parts = []
    for start in range(0, len(x), batch_size):
        keep = max(0, min(readings.keep - start, batch_size))
        part = Readings(keep, readings.at, readings.tail) if keep else Readings()
        parts.append(trajectory_sweep(model, task, x[start:start + batch_size], targets[start:start + batch_size],
                                      max_iters, readings=part, tol=tol))
    kept = [p for p in parts if p.states or p.tail is not None]
    return Sweep(
        correct=torch.cat([p.correct for p in parts], dim=1),
        residual=torch.cat([p.residual for p in parts], dim=1),
        states={i: torch.cat([p.states[i] for p in kept]) for i in readings.at} if kept else {},
        tail=torch.cat([p.tail for p in kept], dim=1) if kept and readings.tail else None,
        computed=sum(p.computed for p in parts),
    )
