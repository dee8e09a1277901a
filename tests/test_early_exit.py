"""One trajectory, many readings, and early exit at equilibrium.

A hand-made cell whose examples settle to the bit at different iterations: with the tolerance at 0
the evaluation must record exactly what the full run records (accuracy per iteration, residuals,
AA, dynamics, traces) while computing fewer steps; a filled-in series read from the wrong iteration,
or not filled at all, fails here."""

import pytest
import torch
from torch import nn

from implicit_repro.iteration import fixed_point_iterate, iterate_to_budget, settled
from implicit_repro.models import EquilibriumModel
from implicit_repro.sweep import Readings, batched_sweep, trajectory_sweep
from implicit_repro import tasks
from test_metric_pins import TOY_TASK, run_evaluation

K = 40


class SettlingCell(nn.Module):
    """z -> z + rate * (target - z) per example, rate = x[:, 1], target = x[:, :1]: in float32 each
    example stops changing to the bit after its own number of steps (fewer for a faster rate)."""

    def forward(self, z, x):
        return z + x[:, 1:2] * (x[:, :1] - z)


class SignHead(nn.Module):
    """Class 1 when the state passed 0.3: examples change answer partway, at different iterations."""

    def forward(self, z):
        return torch.cat([0.3 - z, z - 0.3], dim=1)


def settling_model() -> EquilibriumModel:
    model = EquilibriumModel(SettlingCell(), SignHead(), width=1)
    model.state_shape = lambda x: (x.shape[0], 1)
    return model


def settling_inputs(n: int, offset: float = 0.0):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(n, generator=g) + offset
    rate = torch.linspace(0.2, 0.9, n)[torch.randperm(n, generator=g)]
    y = (torch.arange(n) % 2 == 0).long()
    return torch.stack([target, rate], dim=1), y


def test_settled_asks_for_bit_equality_at_zero():
    z = torch.tensor([[1.0], [1.0]])
    z_next = torch.tensor([[1.0], [1.0 + 1e-7]])
    residual = torch.tensor([0.0, 1e-7])
    assert settled(z_next, z, residual, 0).tolist() == [True, False]
    assert settled(z_next, z, residual, 1e-6).tolist() == [True, True]
    assert settled(z_next, z, residual, None).tolist() == [False, False]


def test_iterate_to_budget_at_zero_tolerance_is_the_full_run_with_fewer_steps():
    x, _ = settling_inputs(12)
    step = settling_model().step
    z0 = torch.zeros(12, 1)
    full = fixed_point_iterate(step, x, z0, K)
    early, computed = iterate_to_budget(step, x, z0, K, tol=0)
    assert torch.equal(full, early)
    assert computed < 12 * K  # examples did stop early: the check above is not vacuous
    batched, computed_b = iterate_to_budget(step, x, z0, K, tol=0, batch_size=5)
    assert torch.equal(full, batched) and computed_b == computed
    assert iterate_to_budget(step, x, z0, K)[1] == 12 * K


def test_the_sweep_at_zero_tolerance_reads_exactly_what_the_full_run_reads():
    model = settling_model()
    x, y = settling_inputs(16)
    readings = Readings(keep=10, at=(5, K), tail=12)
    full = batched_sweep(model, TOY_TASK, x, y, K, batch_size=6, readings=readings)
    early = batched_sweep(model, TOY_TASK, x, y, K, batch_size=6, readings=readings, tol=0)
    assert early.computed < full.computed == full.budget == 16 * K
    assert torch.equal(full.correct, early.correct)
    assert torch.equal(full.residual, early.residual)
    assert full.states.keys() == early.states.keys() == {5, K}
    for i in full.states:
        assert torch.equal(full.states[i], early.states[i]) and full.states[i].shape == (10, 1)
    assert torch.equal(full.tail, early.tail) and full.tail.shape == (12, 10, 1)
    # the kept states are the trajectory's own: the state after 5 steps, and the last 12 states
    z = torch.zeros(10, 1)
    states = [z]
    for _ in range(K):
        z = model.step(z, x[:10])
        states.append(z)
    assert torch.equal(full.states[5], states[5]) and torch.equal(full.tail, torch.stack(states[-12:]))
    # correctness changes after iteration 1 for some example: a series frozen too early would differ
    assert not torch.equal(full.correct[0], full.correct[-1])


def test_a_tolerance_stops_earlier_and_fills_each_series_from_the_final_state():
    model = settling_model()
    x, y = settling_inputs(8)
    sweep = trajectory_sweep(model, TOY_TASK, x, y, K, readings=Readings(keep=8, tail=3), tol=1e-3)
    full = trajectory_sweep(model, TOY_TASK, x, y, K)
    assert sweep.computed < full.computed
    for e in range(8):
        settled_at = int((full.residual[:, e] > 1e-3).sum())  # the step (0-based) whose residual first is <= tol
        # up to and including that step the series are the full run's; after it, that step's values
        assert torch.equal(sweep.residual[: settled_at + 1, e], full.residual[: settled_at + 1, e])
        assert torch.equal(sweep.correct[: settled_at + 1, e], full.correct[: settled_at + 1, e])
        assert (sweep.residual[settled_at:, e] == full.residual[settled_at, e]).all()
        assert (sweep.correct[settled_at:, e] == full.correct[settled_at, e]).all()
    assert torch.equal(sweep.tail[0], sweep.tail[-1])  # every example settled before the tail began


def test_the_evaluation_at_zero_tolerance_records_the_full_run_s_metrics(tmp_path, monkeypatch):
    splits = {"in_distribution": settling_inputs(12), "harder": settling_inputs(12, offset=0.5)}
    overrides = dict(max_iters=K, aa_iters=30, aa_examples=9, aa_pairs_batch=4, attack_examples=4, attack_steps=2)
    (tmp_path / "full").mkdir()
    (tmp_path / "early").mkdir()
    full = run_evaluation(tmp_path / "full", monkeypatch, settling_model(), splits, early_exit_tol=None, **overrides)
    early = run_evaluation(tmp_path / "early", monkeypatch, settling_model(), splits, early_exit_tol=0, **overrides)
    assert full["early_exit"]["example_steps"] == full["early_exit"]["of"]
    assert early["early_exit"]["tol"] == 0 and early["early_exit"]["example_steps"] < early["early_exit"]["of"]
    assert early["early_exit"]["of"] == full["early_exit"]["of"]
    strip = lambda m: {k: v for k, v in m.items() if k not in ("early_exit", "numerics")}  # noqa: E731
    assert strip(full) == strip(early)
    assert full["splits"]["harder"]["dynamics"]["fixed_point"] == 9  # every AA example ends at a fixed point


def test_every_random_draw_is_made_on_a_seeded_cpu_generator(tmp_path, monkeypatch):
    """The permutations of AA and the attack's starts are drawn before anything meets the model's
    device, from CPU generators seeded by the job: so they are the same on every device."""
    draws = []

    def spy_on(owner, name):
        original = getattr(owner, name)

        def spy(*args, **kwargs):
            g = kwargs.get("generator")
            draws.append((name, g.device.type if g is not None else None, kwargs.get("device")))
            return original(*args, **kwargs)
        monkeypatch.setattr(owner, name, spy)

    for name in ("randperm", "randn", "rand", "randint", "normal", "randn_like", "rand_like", "randint_like",
                 "bernoulli", "multinomial"):
        spy_on(torch, name)
    for name in ("normal_", "uniform_", "random_", "bernoulli_", "exponential_"):
        spy_on(torch.Tensor, name)
    splits = {"in_distribution": settling_inputs(12), "harder": settling_inputs(12, offset=0.5)}
    run_evaluation(tmp_path, monkeypatch, settling_model(), splits, max_iters=K, aa_iters=30, aa_examples=9,
                   aa_pairs_batch=4, attack_examples=4, attack_steps=2, early_exit_tol=0)
    assert {"randperm", "randn"} <= {d[0] for d in draws}  # AA's derangements, the attack's starts
    assert all(g == "cpu" and device in (None, "cpu") for _, g, device in draws), draws
