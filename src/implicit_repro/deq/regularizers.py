"""Jacobian regularization (DEQ-JR): a Hutchinson estimate of ||J_f(z)||_F^2.

For v ~ N(0, I), E ||v^T J||^2 = tr(J J^T) = ||J||_F^2, and v^T J is one vector-Jacobian product,
so the penalty costs one backward pass of f per probe and never forms J.

Our own rather than ``torchdeq.loss.jac_reg`` (which computes the same quantity, with the same
normalization for the penalty) because jac_reg draws its probes from the global RNG on the CPU
and copies them over: here a ``torch.Generator`` can be passed, so a training run that saves its
generators' states resumes bit-identically, and the estimate is also available per example.
"""

from __future__ import annotations

import torch

from implicit_repro.deq.solvers import Map


def jacobian_frobenius(f: Map, z: torch.Tensor, probes: int = 1, generator: torch.Generator | None = None,
                       create_graph: bool = True) -> torch.Tensor:
    """(B,) unbiased estimates of ||J_f(z_i)||_F^2, averaged over ``probes`` Gaussian probes.

    f is evaluated once at a detached copy of z (the penalty shapes f, not the path to z). Probes
    are drawn on the generator's device (the CPU without one) in z's dtype, then moved to z's
    device, so a seed gives the same probes on every device. With ``create_graph`` the estimate is
    differentiable wrt f's parameters, to be added to the training loss."""
    if probes < 1:
        raise ValueError(f"probes must be at least 1, got {probes}")
    z = z.detach().requires_grad_()
    with torch.enable_grad():
        fz = f(z)
    device = generator.device if generator is not None else torch.device("cpu")
    total = 0
    for i in range(probes):
        v = torch.randn(fz.shape, generator=generator, dtype=fz.dtype, device=device).to(fz.device)
        (vj,) = torch.autograd.grad(fz, z, v, retain_graph=create_graph or i < probes - 1,
                                    create_graph=create_graph)
        total = total + vj.reshape(len(z), -1).pow(2).sum(1)
    return total / probes


def jacobian_penalty(f: Map, z: torch.Tensor, probes: int = 1, generator: torch.Generator | None = None,
                     create_graph: bool = True) -> torch.Tensor:
    """Scalar penalty in the MDEQ-JR / torchdeq normalization: the batch mean of ||J||_F^2 divided
    by the state size per example (so loss weights such as MDEQ's 0.4 carry over)."""
    per_example = jacobian_frobenius(f, z, probes, generator, create_graph)
    return per_example.mean() / z[0].numel()
