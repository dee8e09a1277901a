"""The DEQ library against problems whose answers are known in closed form.

float64 throughout where a tight tolerance is checked: the solvers then run to 1e-12 and any
remaining difference is a wrong formula, not round-off.
"""

import pytest
import torch
import torch.nn.functional as F
from torchdeq.loss import jac_reg

from implicit_repro.deq import SOLVERS, deq_fixed_point, jacobian_frobenius, jacobian_penalty, solve
from implicit_repro.deq.solvers import read_every_budget
from implicit_repro.seeding import generator

F64 = torch.float64
TIGHT = dict(max_iter=300, tol=1e-12)


@pytest.fixture(autouse=True)
def one_thread():
    """The tensors here are tiny: on a shared, busy machine extra intra-op threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def randn(*shape, seed, dtype=F64):
    return torch.randn(*shape, generator=generator("test-deq", seed), dtype=dtype)


def with_spectral_norm(m: torch.Tensor, norm: float) -> torch.Tensor:
    return norm * m / torch.linalg.matrix_norm(m, 2)


class Linear:
    """f(z) = z A^T + x U^T + b, fixed point z* = (x U^T + b)(I - A^T)^{-1}; A not symmetric."""

    def __init__(self, dim=6, inp=3, batch=4, norm=0.8):
        self.A = with_spectral_norm(randn(dim, dim, seed="A"), norm).requires_grad_()
        self.U = randn(dim, inp, seed="U").requires_grad_()
        self.b = randn(dim, seed="b").requires_grad_()
        self.x = randn(batch, inp, seed="x").requires_grad_()
        self.w = randn(batch, dim, seed="w")  # loss = <w, z*>
        self.params = (self.A, self.U, self.b, self.x)

    def f(self, z):
        return z @ self.A.T + self.x @ self.U.T + self.b

    def closed_form(self):
        c = self.x @ self.U.T + self.b
        eye = torch.eye(len(self.A), dtype=F64)
        return torch.linalg.solve(eye - self.A, c.T).T

    def grads(self, z):
        return torch.autograd.grad((z * self.w).sum(), self.params)


class Tanh:
    """z = tanh(z W^T + x U^T), a nonlinear contraction (||W|| < 1)."""

    def __init__(self, dim=6, inp=3, batch=4):
        self.W = with_spectral_norm(randn(dim, dim, seed="W"), 0.7).requires_grad_()
        self.U = randn(dim, inp, seed="U").requires_grad_()
        self.x = randn(batch, inp, seed="x").requires_grad_()
        self.w = randn(batch, dim, seed="w")
        self.params = (self.W, self.U, self.x)

    def f(self, z):
        return torch.tanh(z @ self.W.T + self.x @ self.U.T)

    def grads(self, z):
        return torch.autograd.grad((z * self.w).sum(), self.params)


def assert_grads_close(got, want, rtol=1e-8, atol=1e-10):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- forward solvers

@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_reaches_closed_form_fixed_point(solver):
    p = Linear()
    z0 = torch.zeros_like(p.w)
    z, stats = solve(p.f, z0, solver, **TIGHT)
    torch.testing.assert_close(z, p.closed_form().detach(), rtol=1e-9, atol=1e-10)
    assert 1 <= stats.nfe <= TIGHT["max_iter"]
    assert stats.residual.shape == (4,) and (stats.residual < TIGHT["tol"]).all()
    assert stats.trace.shape == (4, stats.nfe)
    assert stats.trace[:, 0].min() > 0.5  # from zero the first residual is ||f(0)|| / ||f(0)|| = 1
    assert not z.requires_grad  # the solve itself builds no graph


def test_solvers_agree_on_a_nonlinear_contraction():
    p = Tanh()
    z0 = randn(4, 6, seed="z0")
    sols = {s: solve(p.f, z0, s, **TIGHT)[0] for s in SOLVERS}
    for s in SOLVERS:
        torch.testing.assert_close(sols[s], sols["fixed_point"], rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(p.f(sols[s]).detach(), sols[s], rtol=1e-9, atol=1e-10)


def test_accelerated_solvers_need_fewer_evaluations_on_slow_contraction():
    """Symmetric A with eigenvalues up to 0.95: plain iteration needs ~log(tol)/log(0.95) steps."""
    q, _ = torch.linalg.qr(randn(16, 16, seed="Q"))
    A = q @ torch.diag(torch.linspace(0.0, 0.95, 16, dtype=F64)) @ q.T
    b = randn(3, 16, seed="b")
    target = torch.linalg.solve(torch.eye(16, dtype=F64) - A, b.T).T
    nfe = {}
    for s in SOLVERS:
        z, stats = solve(lambda z: z @ A + b, torch.zeros_like(b), s, max_iter=1000, tol=1e-8)
        assert (z - target).norm() / target.norm() < 1e-6
        nfe[s] = stats.nfe
    assert nfe["fixed_point"] > 250
    assert nfe["anderson"] < nfe["fixed_point"] / 3
    assert nfe["broyden"] < nfe["fixed_point"] / 3


def test_solver_stops_at_max_iter_and_reports_it():
    q, _ = torch.linalg.qr(randn(16, 16, seed="Q"))
    A = q @ torch.diag(torch.linspace(0.0, 0.99, 16, dtype=F64)) @ q.T
    b = randn(2, 16, seed="b")
    for s in SOLVERS:
        _, stats = solve(lambda z: z @ A + b, torch.zeros_like(b), s, max_iter=5, tol=1e-12)
        assert stats.nfe == 5 and stats.trace.shape == (2, 5)  # max_iter bounds evaluations
        assert (stats.residual > 1e-12).all()
        # the reported residual is the best point's, which is on the trace
        assert torch.allclose(stats.trace.min(1).values, stats.residual) or s == "broyden"


@pytest.mark.parametrize("tol", [1e-6, 1e-30])  # the batch stops at some budget / never
@pytest.mark.parametrize("m", [6, 3])
def test_every_budget_from_one_solve_reads_each_budget_s_own_solve(tol, m):
    """What one Anderson solve hands ``read`` after k evaluations is, to the bit, what a solve allowed
    k evaluations returns: for budgets below the history size (m = min(m, max_iter) there), at the
    stop and past it. A reading of the newest iterate instead of the best so far, or one budget off,
    fails here."""
    problem = Linear(dim=16, batch=5, norm=1.5)  # not a contraction: the newest point is not always the best
    f = lambda z: problem.f(z).detach()  # noqa: E731
    z0 = torch.zeros(5, 16, dtype=F64)
    budget = 40
    got = read_every_budget(f, z0, budget, tol, read=lambda z: z.clone(), m=m)
    want = [solve(f, z0, "anderson", k, tol, m=m)[0] for k in range(1, budget + 1)]
    assert len(got) == budget
    for k, (g, w) in enumerate(zip(got, want), start=1):
        assert torch.equal(g, w), f"budget {k}"
    stopped = solve(f, z0, "anderson", budget, tol, m=m)[1].nfe
    if tol == 1e-30 or m == 6:  # the batch never stops / stops early: both are exercised
        assert (stopped < budget) == (tol > 1e-20)


def test_every_budget_refuses_the_solvers_it_cannot_read():
    with pytest.raises(ValueError, match="Anderson"):
        read_every_budget(lambda z: z, torch.zeros(1, 2), 3, 1e-3, read=lambda z: 0.0, solver="broyden")


def test_solver_kwargs_reach_the_solver():
    p = Tanh()
    z0 = torch.zeros_like(p.w)
    plain = solve(p.f, z0, "fixed_point", max_iter=6, tol=0)[1]
    one_slot = solve(p.f, z0, "anderson", max_iter=6, tol=0, m=1)[1]  # no history: plain iteration
    torch.testing.assert_close(one_slot.trace, plain.trace)
    damped = solve(p.f, z0, "anderson", max_iter=6, tol=0, tau=0.5)[1]
    assert not torch.allclose(damped.trace, solve(p.f, z0, "anderson", max_iter=6, tol=0)[1].trace)
    with pytest.raises(ValueError, match="takes no tau"):
        solve(p.f, z0, "fixed_point", tau=0.5)
    with pytest.raises(ValueError, match="takes no m"):
        solve(p.f, z0, "broyden", m=5)


def test_batch_examples_are_solved_independently():
    """Anderson and Broyden keep per-example histories: solving a batch equals solving each
    example alone (up to the tolerance, since the batch stops together)."""
    p = Tanh()
    z0 = torch.zeros(4, 6, dtype=F64)
    for s in SOLVERS:
        together = solve(p.f, z0, s, **TIGHT)[0]
        for i in range(4):
            alone = solve(lambda z: torch.tanh(z @ p.W.T + p.x[i:i + 1] @ p.U.T), z0[i:i + 1], s, **TIGHT)[0]
            torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-9, atol=1e-10)


def test_unknown_names_are_refused():
    p = Linear()
    with pytest.raises(ValueError, match="unknown solver"):
        deq_fixed_point(p.f, torch.zeros_like(p.w), solver="newton")
    with pytest.raises(ValueError, match="unknown grad"):
        deq_fixed_point(p.f, torch.zeros_like(p.w), grad="adjoint")
    with pytest.raises(ValueError, match="fixed_point"):
        deq_fixed_point(p.f, torch.zeros_like(p.w), solver="anderson", grad="unrolled")


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("solver", SOLVERS)
def test_ift_gradient_equals_closed_form_gradient(solver):
    p = Linear()
    want = p.grads(p.closed_form())
    z, stats = deq_fixed_point(p.f, torch.zeros_like(p.w), solver=solver, grad="ift",
                               backward_tol=1e-13, **TIGHT)
    assert stats.grad_nfe == 1 and stats.backward is None
    assert_grads_close(p.grads(z), want)
    assert stats.backward is not None  # the adjoint solve reported itself during backward
    assert 1 <= stats.backward.nfe <= TIGHT["max_iter"] and (stats.backward.residual < 1e-13).all()


def test_ift_backward_may_use_another_solver():
    p = Linear()
    z, stats = deq_fixed_point(p.f, torch.zeros_like(p.w), solver="broyden", grad="ift",
                               backward_solver="fixed_point", backward_max_iter=400, backward_tol=1e-13, **TIGHT)
    assert_grads_close(p.grads(z), p.grads(p.closed_form()))
    assert stats.backward.nfe > 50  # plain iteration at ||A|| = 0.8, not Broyden's handful


def test_phantom_tends_to_ift_as_steps_grow():
    p = Linear()
    want = p.grads(p.closed_form())

    def error(steps):
        z, stats = deq_fixed_point(p.f, torch.zeros_like(p.w), grad="phantom", phantom_steps=steps,
                                   phantom_damping=0.5, **TIGHT)
        assert stats.grad_nfe == steps
        return max(((g - w).norm() / w.norm()).item() for g, w in zip(p.grads(z), want))

    few, many = error(3), error(250)
    assert few > 1e-2 and many < 1e-8


def test_phantom_with_one_step_is_jfb():
    p = Tanh()
    z0 = torch.zeros_like(p.w)
    z_jfb, _ = deq_fixed_point(p.f, z0, grad="jfb", **TIGHT)
    z_one, _ = deq_fixed_point(p.f, z0, grad="phantom", phantom_steps=1, phantom_damping=1.0, **TIGHT)
    torch.testing.assert_close(z_one, z_jfb)
    jfb = p.grads(z_jfb)
    assert_grads_close(p.grads(z_one), jfb, rtol=0, atol=0)
    # damping λ scales one step's gradient by λ: d[(1-λ) z* + λ f(z*)] = λ df(z*)
    z_damped, _ = deq_fixed_point(p.f, z0, grad="phantom", phantom_steps=1, phantom_damping=0.3, **TIGHT)
    assert_grads_close(p.grads(z_damped), [0.3 * g for g in jfb])


def test_jfb_is_one_application_of_f_at_the_detached_fixed_point():
    p = Tanh()
    z, _ = deq_fixed_point(p.f, torch.zeros_like(p.w), grad="jfb", **TIGHT)
    z_star = solve(p.f, torch.zeros_like(p.w), "anderson", **TIGHT)[0]
    assert_grads_close(p.grads(z), p.grads(p.f(z_star.detach())))


def test_unrolled_gradient_is_autograd_through_the_loop():
    p = Tanh()
    z0 = randn(4, 6, seed="z0").requires_grad_()
    z, stats = deq_fixed_point(p.f, z0, solver="fixed_point", grad="unrolled", max_iter=7, tol=1.0)
    assert stats.nfe == 7 and stats.trace.shape == (4, 7) and stats.grad_nfe == 0  # tol is ignored
    ref = z0
    for _ in range(7):
        ref = p.f(ref)
    torch.testing.assert_close(z, ref, rtol=0, atol=0)
    got = torch.autograd.grad((z * p.w).sum(), (*p.params, z0))
    want = torch.autograd.grad((ref * p.w).sum(), (*p.params, z0))
    assert_grads_close(got, want, rtol=0, atol=0)


def test_unrolled_to_convergence_matches_ift_on_a_nonlinear_map():
    p = Tanh()
    z0 = torch.zeros_like(p.w)
    z_unr, _ = deq_fixed_point(p.f, z0, solver="fixed_point", grad="unrolled", max_iter=120)
    z_ift, _ = deq_fixed_point(p.f, z0, grad="ift", **TIGHT)
    assert_grads_close(p.grads(z_ift), p.grads(z_unr), rtol=1e-8, atol=1e-10)


def test_no_gradient_is_attached_in_evaluation():
    p = Linear()
    with torch.no_grad():
        z, stats = deq_fixed_point(p.f, torch.zeros_like(p.w), grad="phantom", **TIGHT)
    assert not z.requires_grad and stats.grad_nfe == 0
    torch.testing.assert_close(z, solve(p.f, torch.zeros_like(p.w), "anderson", **TIGHT)[0])


# ---------------------------------------------------------------- states of any shape

class Conv:
    """A small conv cell on (B, C, L) or (B, C, H, W) states: z = tanh(conv(z) + x)."""

    def __init__(self, spatial, batch=3, channels=3):
        conv = F.conv1d if len(spatial) == 1 else F.conv2d
        k = (3,) * len(spatial)
        self.weight = (0.08 * randn(channels, channels, *k, seed=f"conv{len(spatial)}")).requires_grad_()
        self.x = randn(batch, channels, *spatial, seed=f"x{len(spatial)}").requires_grad_()
        self.w = randn(batch, channels, *spatial, seed=f"w{len(spatial)}")
        self.conv = conv

    def f(self, z):
        return torch.tanh(self.conv(z, self.weight, padding=1) + self.x)

    def grads(self, z):
        return torch.autograd.grad((z * self.w).sum(), (self.weight, self.x))


@pytest.mark.parametrize("spatial", [(7,), (4, 5)], ids=["BCL", "BCHW"])
def test_conv_states_solve_and_differentiate(spatial):
    p = Conv(spatial)
    z0 = torch.zeros_like(p.w)
    # the IFT gradient's reference: backprop through enough unrolled steps to converge
    z_unr, _ = deq_fixed_point(p.f, z0, solver="fixed_point", grad="unrolled", max_iter=80)
    want = p.grads(z_unr)
    for s in SOLVERS:
        z, stats = deq_fixed_point(p.f, z0, solver=s, grad="ift", backward_tol=1e-12, **TIGHT)
        assert z.shape == z0.shape and stats.residual.shape == (3,)
        torch.testing.assert_close(z, z_unr.detach(), rtol=1e-9, atol=1e-10)
        assert_grads_close(p.grads(z), want, rtol=1e-7, atol=1e-9)


def test_float32_solves_to_a_loose_tolerance():
    p = Conv((7,))
    weight, x = p.weight.float(), p.x.float()
    f = lambda z: torch.tanh(F.conv1d(z, weight, padding=1) + x)  # noqa: E731
    for s in SOLVERS:
        z, stats = solve(f, torch.zeros_like(x), s, max_iter=60, tol=1e-5)
        assert z.dtype == torch.float32 and (stats.residual < 1e-5).all()


# ---------------------------------------------------------------- Jacobian penalty

def test_jacobian_estimate_is_unbiased_on_a_linear_map():
    A = randn(6, 6, seed="jac")
    z = randn(5, 6, seed="jz")
    est = jacobian_frobenius(lambda z: z @ A.T, z, probes=800, generator=generator("probes"))
    assert est.shape == (5,)
    exact = torch.linalg.matrix_norm(A) ** 2
    torch.testing.assert_close(est.mean(), exact, rtol=0.05, atol=0)


def test_jacobian_penalty_gradient_is_unbiased():
    A = randn(6, 6, seed="jac").requires_grad_()
    z = randn(5, 6, seed="jz")
    est = jacobian_frobenius(lambda z: z @ A.T, z, probes=800, generator=generator("probes"))
    (grad,) = torch.autograd.grad(est.mean(), A)
    torch.testing.assert_close(grad, 2 * A.detach(), rtol=0, atol=0.15 * (2 * A).abs().max().item())


def test_jacobian_penalty_matches_torchdeq_jac_reg_and_is_reproducible():
    p = Conv((7,))
    z = randn(3, 3, 7, seed="jz").float()
    weight, x = p.weight.detach().float(), p.x.detach().float()
    f = lambda z: torch.tanh(F.conv1d(z, weight, padding=1) + x)  # noqa: E731
    ours = jacobian_penalty(f, z, probes=3, generator=generator("probes"))
    assert ours == jacobian_penalty(f, z, probes=3, generator=generator("probes"))
    with torch.random.fork_rng():  # jac_reg draws from the global CPU generator
        torch.manual_seed(generator("probes").initial_seed())
        zr = z.clone().requires_grad_()
        theirs = jac_reg(f(zr), zr, vecs=3)
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-5, atol=0)
