import dataclasses

import torch

from implicit_repro.data import prefix_sums
from implicit_repro.interventions import INTERVENTIONS, forward_budget, get_intervention, initial_state
from implicit_repro.models import build_model
from implicit_repro.seeding import generator
from implicit_repro.sweep import batched_sweep, trajectory_sweep
from implicit_repro.tasks import PREFIX_SUMS


def _model_and_data(n=40, bits=10):
    torch.manual_seed(0)
    model = build_model("prefix_sums", width=8, blocks=1).eval()
    data = prefix_sums.generate(bits, n, generator("sweep"))
    return model, prefix_sums.model_input(data["inputs"]), data["targets"].long()


# Per-bit correctness of the first bit: an untrained model gets some right, so rows differ.
FIRST_BIT = dataclasses.replace(PREFIX_SUMS, correct=lambda logits, y: logits[:, :, 0].argmax(1) == y[:, 0])


def test_one_pass_sweep_equals_one_run_per_budget():
    model, x, y = _model_and_data()
    # Scale the weights up so predictions change from one iteration to the next.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    sweep = trajectory_sweep(model, FIRST_BIT, x, y, max_iters=12)
    assert sweep.correct.shape == (12, len(x))
    with torch.no_grad():
        separate = torch.stack([FIRST_BIT.correct(model(x, k), y) for k in range(1, 13)])
    assert torch.equal(sweep.correct, separate)
    assert len({tuple(row.tolist()) for row in separate}) > 1  # the check is not vacuous


def test_batched_sweep_equals_whole_batch():
    model, x, y = _model_and_data(n=37)
    whole = trajectory_sweep(model, PREFIX_SUMS, x, y, 6)
    batched = batched_sweep(model, PREFIX_SUMS, x, y, 6, batch_size=10)
    assert torch.equal(whole.correct, batched.correct)
    assert torch.allclose(whole.residual, batched.residual)


def test_residual_is_relative_step_size():
    """Row k - 1 holds ||z_k - z_{k-1}|| / ||z_k|| per example, z_0 the initial state (zeros: row 0 is 1)."""
    model, x, y = _model_and_data(n=4)
    sweep = trajectory_sweep(model, PREFIX_SUMS, x, y, 3)
    with torch.no_grad():
        states = [model.initial_state(x)]
        for _ in range(3):
            states.append(model.step(states[-1], x))
    expected = torch.stack([(now - before).flatten(1).norm(dim=1) / now.flatten(1).norm(dim=1)
                            for before, now in zip(states, states[1:])])
    assert sweep.residual.shape == (3, 4)
    assert torch.allclose(sweep.residual, expected)
    assert torch.allclose(sweep.residual[0], torch.ones(4))
    assert len({tuple(row.tolist()) for row in expected}) == 3  # the rows differ: a shifted row would show


def test_mixed_init_flips_one_coin_per_example_not_per_element():
    zeros = torch.zeros(400, 6, 10)
    params = {"init_std": 1.0, "mixed_init_prob": 0.5}
    z0 = initial_state(get_intervention("mixed_init"), zeros, params, generator(0))
    nonzero = (z0 != 0).flatten(1)
    per_example = nonzero.all(1) | (~nonzero).all(1)
    assert per_example.all(), "every example must start either all-zero or all-random"
    frac_random = nonzero.all(1).float().mean().item()
    assert 0.4 < frac_random < 0.6
    assert abs(z0[nonzero.all(1)].std().item() - 1.0) < 0.05


def test_baseline_starts_from_zero_with_the_fixed_budget():
    zeros = torch.zeros(5, 2, 3)
    base = get_intervention("baseline")
    assert torch.equal(initial_state(base, zeros, {}, generator(0)), zeros)
    assert forward_budget(base, 17, {}, generator(0)) == 17


def test_random_budget_covers_its_range():
    params = {"budget_min": 3, "budget_max": 6}
    g = generator(1)
    draws = {forward_budget(get_intervention("random_budget"), 17, params, g) for _ in range(200)}
    assert draws == {3, 4, 5, 6}


def test_schema_enum_lists_exactly_the_registered_interventions():
    import yaml
    from conftest import ROOT

    schema = yaml.safe_load((ROOT / "src/implicit_repro/papers/anil2022/schema.yaml").read_text())
    enum = schema["$defs"]["intervention"]["enum"]
    assert set(enum) == set(INTERVENTIONS)
