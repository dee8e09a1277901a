"""The adversarial-initial-state stress test of anil2022 (item ``table1_adversarial_init``).

AA measures path independence from *random* starts; a net can look path independent on those and
still have starts that lead elsewhere. The stress test lets an optimizer search for such a start:
Adam on the initial state z0 alone (the model is frozen: only z0 is handed to the optimizer and
gradients are taken w.r.t. z0 only, so the model's ``.grad`` fields are never touched), then reports
AA and accuracy from the random start it began at ("before") and from the start it found ("after").

Our documented choices (the paper's attack settings are not known to us):
- Objective. ``"alignment"`` (default): minimise cos(z_ref, z_K(z0)), z_ref being the state reached
  from zero init. It attacks exactly what AA measures, needs no labels (so it runs on any readout
  and any split) and a lower alignment is what moves the readout. ``"loss"``: maximise the task loss
  of the readout after K iterations, which attacks accuracy directly but may stop at a start that
  crosses a decision boundary while staying aligned. Both are offered; the report must say which.
- Budget. Each start is kept in the ball ||z0|| <= init_std * sqrt(D), D the state's size per
  example: the typical norm of the N(0, init_std^2 I) starts that AA and mixed-init training use,
  so the adversary gets no more scale than a random start, only a worse direction. The random
  start the attack begins at is projected into the same ball (it only shrinks draws that fall
  outside), and "before" is measured at that projected start.
- Surrogate. Inside an attractor the reached state barely depends on where the iteration started:
  d z_K / d z0 shrinks geometrically with K (for tanh(3z) it underflows float32 by K ~ 30), and a
  gradient that small stalls Adam at its eps. So the gradient is taken of the objective averaged
  over the whole trajectory, iterations 1..K (early iterations still feel z0 and decide which basin
  the trajectory falls into); ``trajectory=False`` uses iteration K alone. Whatever the surrogate,
  each example keeps the start with the best *true* objective (at iteration K) seen during the
  attack, the random start included, so the attack can never report a start worse than where it
  began.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from implicit_repro.path_independence import cosine
from implicit_repro.iteration import Step, iterate_to_budget

Readout = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # unreduced: leading dim is the batch
CorrectFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (B,) bool
OBJECTIVES = ("alignment", "loss")


@dataclass(frozen=True)
class AttackResult:
    z0: torch.Tensor  # (B, ...) the adversarial starts found
    aa_before: torch.Tensor  # (B,) cos(state from zero init, state from the random start)
    aa_after: torch.Tensor  # (B,) cos(state from zero init, state from the adversarial start)
    correct_zero: torch.Tensor | None  # (B,) bool, from zero init; None without targets
    correct_before: torch.Tensor | None
    correct_after: torch.Tensor | None
    objective: torch.Tensor  # (attack_steps + 1,) mean over examples of the best true objective so far

    def summary(self) -> dict[str, float]:
        out = {"aa_before": self.aa_before.mean().item(), "aa_after": self.aa_after.mean().item()}
        for name in ("zero", "before", "after"):
            correct = getattr(self, f"correct_{name}")
            if correct is not None:
                out[f"accuracy_{name}"] = correct.float().mean().item()
        return out


def norm_budget(state: torch.Tensor, init_std: float) -> float:
    """The typical norm of an N(0, init_std^2 I) draw of one example's state: init_std * sqrt(D)."""
    return init_std * state[0].numel() ** 0.5


def project_to_ball(z: torch.Tensor, radius: float) -> torch.Tensor:
    """Scale down, per example, every state whose norm exceeds ``radius``."""
    norms = z.flatten(1).norm(dim=1).clamp_min(1e-12)
    scale = (radius / norms).clamp(max=1.0)
    return z * scale.view(-1, *[1] * (z.dim() - 1))


def _per_example(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).mean(1) if values.dim() > 1 else values


class Adam:
    """torch.optim.Adam's update of one tensor, written out (its single-tensor path on the CPU, no
    weight decay, no amsgrad): torch.optim's first step imports torch._dynamo, 1.2 CPU-seconds, more
    than a small evaluation's whole attack. tests/test_stress_and_cycles.py checks it against
    torch.optim.Adam bit for bit."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps, self.steps = param, lr, betas, eps, 0
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.steps)  # torch keeps the count in a float tensor
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-(self.lr / (1 - beta1**step)))


def adversarial_init_attack(
    step: Step, readout: Readout, x: torch.Tensor, iters: int, g: torch.Generator, *,
    objective: str = "alignment", targets: torch.Tensor | None = None, loss_fn: LossFn | None = None,
    correct: CorrectFn | None = None, attack_steps: int = 100, lr: float = 0.1, init_std: float = 1.0,
    trajectory: bool = True, zeros: torch.Tensor | None = None, tol: float | None = None,
) -> AttackResult:
    """Search, per example, for a start z0 whose state after ``iters`` steps is far from the one zero
    init reaches (``objective="alignment"``) or whose readout has a high loss (``"loss"``, needs
    ``targets`` and an unreduced ``loss_fn``). Accuracies are reported when ``targets`` and
    ``correct`` are given. ``zeros`` is the zero state (default: ``zeros_like(x)``, for toy maps
    whose state has the input's shape). The random start is drawn from ``g`` on the CPU and then
    moved to x's device, so every device starts from the same states. Put a model in eval mode first.
    ``tol``: early exit of the reference, before and after solves (``iteration.settled``).
    """
    if iters < 1 or attack_steps < 0:
        raise ValueError("the attack needs iters >= 1 and attack_steps >= 0")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    if objective == "loss" and (targets is None or loss_fn is None):
        raise ValueError("the loss objective needs targets and an unreduced loss_fn")
    zeros = torch.zeros_like(x) if zeros is None else zeros
    radius = norm_budget(zeros, init_std)

    z_ref, _ = iterate_to_budget(step, x, zeros, iters, tol)

    def score(z: torch.Tensor) -> torch.Tensor:
        """Per-example attack score of one state: higher is a more successful attack."""
        if objective == "alignment":
            return -cosine(z_ref, z)
        return _per_example(loss_fn(readout(z), targets))

    random_start = torch.randn(zeros.shape, generator=g, dtype=zeros.dtype).to(zeros.device) * init_std
    z0 = project_to_ball(random_start, radius).requires_grad_(True)
    best_z0, best = z0.detach().clone(), None
    opt = Adam(z0, lr)
    history = []
    with torch.enable_grad():
        for k in range(attack_steps + 1):
            z, scores = z0, []
            for _ in range(iters):
                z = step(z, x)
                if trajectory:
                    scores.append(score(z))
            final = score(z) if not trajectory else scores[-1]
            with torch.no_grad():  # keep, per example, the best start seen so far
                if best is None:
                    best = final.detach().clone()
                else:
                    better = final.detach() > best
                    best = torch.where(better, final.detach(), best)
                    best_z0[better] = z0.detach()[better]
            history.append(best.mean().item())
            if k == attack_steps:
                break
            surrogate = torch.stack(scores).mean(0) if trajectory else final
            (grad,) = torch.autograd.grad(surrogate.sum(), z0)
            opt.step(-grad)  # Adam minimises; we ascend the score
            with torch.no_grad():
                z0.copy_(project_to_ball(z0, radius))

    with torch.no_grad():
        start = project_to_ball(random_start, radius)
        z_before, _ = iterate_to_budget(step, x, start, iters, tol)
        z_after, _ = iterate_to_budget(step, x, best_z0, iters, tol)
        accuracy = targets is not None and correct is not None
        return AttackResult(
            z0=best_z0,
            aa_before=cosine(z_ref, z_before),
            aa_after=cosine(z_ref, z_after),
            correct_zero=correct(readout(z_ref), targets) if accuracy else None,
            correct_before=correct(readout(z_before), targets) if accuracy else None,
            correct_after=correct(readout(z_after), targets) if accuracy else None,
            objective=torch.tensor(history),
        )
