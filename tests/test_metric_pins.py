"""Every number anil2022's evaluation records, pinned on hand-made models whose answers are known in
closed form.

The models here are not trained. Each is a cell whose iterates can be written down, with a readout
built by hand, so every value a metrics file holds (accuracy per test-time iteration, the median
residual, AA and its all-pairs variant, per-example AA with its correctness, the dynamics, the
residual traces, the attack's zero-init accuracy) has an expected value that the test computes from
the formula, not by running the package's code a second time. The frames the report reads from a
metrics file (summary, curve, per-example, depth and gradient-study frames) are pinned on the same
record, so a value picked from the wrong index fails here too.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from implicit_repro import tasks
from implicit_repro.checkpoint import save_checkpoint
from implicit_repro.data.store import save_dataset
from implicit_repro.evaluation import EvalJob, evaluate
from implicit_repro.io import read_json
from implicit_repro.models import EquilibriumModel
from implicit_repro.papers.anil2022 import models as anil2022_models
from implicit_repro.papers.anil2022.correlation import depth_frame
from implicit_repro.papers.anil2022.stress import study_values
from implicit_repro.results.collect import curve_frame, load_records, per_example_frame, summary_frame


# ---------------------------------------------------------------- the latch model
#
# State z = (m, u), m in R^N, u a scalar; input x = (code, c), c a scalar and code = s_i e_i for
# example i: e_i row i of the N x N identity, s_i a scale that differs between examples.
#   m latches: an all-zero m takes the input's code, any other m is kept. From zero init m = code_i
#     after one step and stays; restarted from example j's state it keeps code_j, orthogonal to
#     code_i and of its own length. So AA on z is below 1, the first run must start from zeros (a
#     noisy start keeps its noise) and the second from *another example's* state, and which one
#     can be read off the cosine.
#   u_{k+1} = u_k / 2 + c: from zero init u_k = 2c(1 - 2^-k), from u0 it is u0 / 2^k + 2c(1 - 2^-k).
# The head reads u alone: logits (1 - u, u - 1), class 1 exactly when u > 1. Its logits do not see
# m, so AA on the logits would be +-1 where AA on z is not.
#
# An example is given by (cross, target): c = 1 / (2 - 3 * 2^-cross) puts u_k > 1 exactly from
# iteration ``cross`` on (u_k > 1 <=> 2^-k < 1.5 * 2^-cross <=> k > cross - 0.58), so the example
# is correct at iteration k exactly when (k >= cross) == target.

DECAY = 0.5


class LatchCell(nn.Module):
    def forward(self, z, x):
        m, u = z[:, :-1], z[:, -1:]
        code, c = x[:, :-1], x[:, -1:]
        fresh = (m == 0).all(1, keepdim=True)
        return torch.cat([torch.where(fresh, code, m), DECAY * u + c], dim=1)


class ThresholdHead(nn.Module):
    def forward(self, z):
        u = z[:, -1]
        return torch.stack([1 - u, u - 1], dim=1)


def crossing_input(cross: int) -> float:
    return 1.0 / (2.0 - 3.0 * 2.0 ** -cross)


# (cross, target) per example. At the AA budget (3) the first five examples are right/wrong
# [1, 0, 1, 1, 1]; at iterations 1, 2 and 4 the pattern differs, so reading correctness at any
# other iteration fails. Accuracy per iteration 1..8: [3, 4, 5, 6, 5, 6, 6, 5] / 7.
IN_DIST = [(1, 1), (4, 1), (5, 0), (2, 1), (3, 1), (6, 1), (8, 0)]
# Harder: accuracy [2, 3, 2, 3, 4, 4, 3, 4] / 7; right/wrong at the AA budget [0, 0, 0, 1, 1].
HARDER = [(4, 1), (1, 0), (3, 0), (7, 0), (2, 1), (5, 1), (8, 1)]
N = len(IN_DIST)
TRAIN_ITERS, MAX_ITERS, AA_ITERS, AA_EXAMPLES, PAIRS, ATTACKED = 2, 8, 3, 5, 4, 5


def code_scales(n):
    return 0.5 + 0.25 * np.arange(n)


def latch_inputs(design):
    c = torch.tensor([crossing_input(m) for m, _ in design])
    x = torch.cat([torch.diag(torch.tensor(code_scales(len(design)), dtype=torch.float32)), c.unsqueeze(1)], dim=1)
    return x, torch.tensor([t for _, t in design])


def u_after(c, k, u0=0.0):
    """u after k steps of u -> u / 2 + c from u0 (float64)."""
    return u0 * DECAY ** k + c * (1 - DECAY ** k) / (1 - DECAY)


def c_values(design):
    # the float32 inputs the model sees, in float64 for the expected values
    return torch.tensor([crossing_input(m) for m, _ in design]).double().numpy()


def expected_correct(design, k):
    return [(k >= cross) == bool(target) for cross, target in design]


def expected_accuracy(design):
    return [float(np.mean(expected_correct(design, k))) for k in range(1, MAX_ITERS + 1)]


def expected_residual_median(design):
    """||z_k - z_{k-1}|| / ||z_k||: 1 at k = 1 (from zero); then only u moves, by c / 2^(k-1),
    while ||z_k||^2 = s^2 + u_k^2 (the latched code has length s). Median over the (odd) examples."""
    c, s = c_values(design), code_scales(len(design))
    rows = [np.ones(len(c))]
    for k in range(2, MAX_ITERS + 1):
        rows.append(np.abs(u_after(c, k) - u_after(c, k - 1)) / np.sqrt(s ** 2 + u_after(c, k) ** 2))
    return [float(np.median(r)) for r in rows]


def restart_cosines(design, iters=AA_ITERS, n=AA_EXAMPLES):
    """(n, n): entry (i, j) = cos(z'_i, z''_ij), z'_i = (code_i, u_K(c_i)) reached from zeros, z''_ij
    input i restarted from z'_j for K more steps: it keeps code_j (orthogonal to code_i unless i = j)
    and u goes from u_K(c_j) on under input c_i."""
    c, s = c_values(design)[:n], code_scales(n)
    first = u_after(c, iters)  # (n,)
    second = u_after(c[:, None], iters, u0=first[None, :])  # (i, j)
    dot = np.diag(s ** 2) + first[:, None] * second
    return dot / np.sqrt((s[:, None] ** 2 + first[:, None] ** 2) * (s[None, :] ** 2 + second ** 2))


def expected_aa(design, recorded, iters=AA_ITERS):
    """Algorithm 1's per-example AA is cos(z'_i, z''_i(pi(i))) for a derangement pi. The test does not
    know which one the evaluation drew, so it reads pi off the recorded values: each must be one
    (and only one) of its row's candidates, never the diagonal, and the chosen starts must be a
    permutation. Returns the expected values."""
    n = len(recorded)
    cos = restart_cosines(design, iters, n)
    off = cos[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    # the candidates of a row differ, from each other and from the diagonal: pi is identifiable
    assert all(np.diff(np.sort(np.append(row, cos[i, i]))).min() > 1e-3 for i, row in enumerate(off))
    starts = []
    for i, value in enumerate(recorded):
        match = [j for j in range(n) if abs(cos[i, j] - value) < 1e-5 * max(1.0, abs(value))]
        assert len(match) == 1 and match[0] != i, (i, value, cos[i])
        starts.append(match[0])
    assert sorted(starts) == list(range(n)), starts  # each example's state used as a start exactly once
    return cos[np.arange(n), starts]


def expected_all_pairs(design, iters=AA_ITERS, b=PAIRS):
    """The mean over all b x b (input i, start j), the diagonal included."""
    return float(restart_cosines(design, iters, b).mean())


def test_the_latch_design_is_what_the_expected_values_assume():
    """The closed forms above describe the model: its states after k steps (from zeros and from
    another example's state), and which iterations each example is right at."""
    x, y = latch_inputs(IN_DIST)
    cell, head = LatchCell(), ThresholdHead()
    c = c_values(IN_DIST)
    z = torch.zeros(N, N + 1)
    for k in range(1, MAX_ITERS + 1):
        z = cell(z, x)
        assert torch.equal(z[:, :N], x[:, :N])
        assert np.allclose(z[:, N].double().numpy(), u_after(c, k), rtol=1e-6)
        assert (head(z).argmax(1) == y).tolist() == expected_correct(IN_DIST, k)
    restarted = cell(z.roll(1, 0), x)
    assert torch.equal(restarted[:, :N], x[:, :N].roll(1, 0))  # the other example's code is kept
    assert expected_accuracy(IN_DIST) == pytest.approx([v / 7 for v in (3, 4, 5, 6, 5, 6, 6, 5)])


# ---------------------------------------------------------------- the dynamics model
#
# State (N, 2), input (kind, angle, c1, c2):
#   kind 0: z -> z / 2 + c, a fixed point (residual 1 / (2^k - 1) after k steps from zeros);
#   kind 1: z -> rotation of z by ``angle`` put back on the unit circle (an all-zero z first becomes
#           (1, 0)): a cycle of period 2 pi / angle when that is an integer, residual 2 sin(angle / 2)
#           after the first step;
#   kind 2: z -> 2 z + 1, moving away (residual 2^(k-1) / (2^k - 1)).

FIXED, ROTATE, GROW = 0, 1, 2


class DynamicsCell(nn.Module):
    def forward(self, z, x):
        kind, angle, c = x[:, :1], x[:, 1], x[:, 2:4]
        start = torch.where((z == 0).all(1, keepdim=True), torch.tensor([1.0, 0.0]), z)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rotated = torch.stack([cos * start[:, 0] - sin * start[:, 1], sin * start[:, 0] + cos * start[:, 1]], 1)
        rotated = rotated / rotated.norm(dim=1, keepdim=True)
        return torch.where(kind == FIXED, DECAY * z + c, torch.where(kind == ROTATE, rotated, 2 * z + 1))


class FirstCoordinateHead(nn.Module):
    def forward(self, z):
        return torch.stack([-z[:, 0], z[:, 0]], dim=1)


# (kind, period): with cycle_max_period = 4 a period-6 rotation is "moving". The last two examples are
# beyond aa_examples = 10 and must not be counted.
DYNAMICS = [(FIXED, 0), (ROTATE, 3), (GROW, 0), (ROTATE, 2), (FIXED, 0), (ROTATE, 4), (FIXED, 0), (GROW, 0),
            (ROTATE, 3), (ROTATE, 6), (ROTATE, 2), (FIXED, 0)]
DYN_AA, DYN_ITERS, DYN_MAX_PERIOD = 10, 30, 4


def dynamics_inputs():
    rows = [[kind, 2 * math.pi / period if period else 0.0, 0.3 + 0.1 * i, -0.2]
            for i, (kind, period) in enumerate(DYNAMICS)]
    return torch.tensor(rows), torch.zeros(len(rows), dtype=torch.long)


def expected_trace(kind, period, iters=DYN_ITERS):
    k = np.arange(1, iters + 1, dtype=float)
    if kind == FIXED:
        return 1 / (2 ** k - 1)
    if kind == GROW:
        return 2 ** (k - 1) / (2 ** k - 1)
    return np.where(k == 1, 1.0, 2 * math.sin(math.pi / period))


# ---------------------------------------------------------------- running the evaluation

TOY_TASK = tasks.Task("pin_toy", lambda t: t.float(), lambda t: t.long(), F.cross_entropy,
                      lambda logits, y: logits.argmax(1) == y)


def run_evaluation(tmp_path, monkeypatch, model, splits, **eval_overrides):
    """Evaluate ``model`` (hand-made: build() returns it, the task is the toy one) on ``splits``,
    {name: (inputs, targets)}; the in-distribution split gets as many junk rows in front of its test
    rows as it has test rows (train_fraction 0.5: the evaluation must skip them). Returns the
    metrics file as written."""
    monkeypatch.setattr(anil2022_models, "build", lambda spec: model)
    monkeypatch.setitem(tasks.FACTORIES, "pin_toy", lambda: TOY_TASK)
    monkeypatch.setitem(tasks.TASKS, "pin_toy", TOY_TASK)
    paths = []
    for name, (x, y) in splits.items():
        if name == "in_distribution":  # training rows in front (all 7s, targets flipped): any number read
            x = torch.cat([torch.full_like(x, 7.0), x])  # off them differs from the expected one
            y = torch.cat([1 - y, y])
        path = tmp_path / f"{name}.pt"
        save_dataset(path, {"inputs": x, "targets": y}, {})
        paths.append([name, str(path)])
    spec = {
        "paper": "anil2022", "task": "pin_toy", "intervention": "baseline", "seed": 0,
        "data": {"train_fraction": 0.5}, "model": {}, "intervention_params": {"init_std": 1.0},
        "train": {"iters": TRAIN_ITERS, "gradient": "unrolled"},
        "eval": {"max_iters": MAX_ITERS, "n_examples": 100, "batch_size": 3, "aa_iters": AA_ITERS,
                 "aa_examples": AA_EXAMPLES, "aa_pairs_batch": PAIRS, "attack_examples": 0, "attack_steps": 1,
                 "attack_lr": 0.1, "cycle_max_period": 2, "cycle_tol": 1e-3, **eval_overrides},
        "splits": paths,
    }
    save_checkpoint(tmp_path / "model.pt", {"model": model.state_dict(), "status": "ok", "spec": spec})
    evaluate(EvalJob(spec, tmp_path / "model.pt", tmp_path / "metrics.json"))
    return read_json(tmp_path / "metrics.json")


def latch_model():
    return EquilibriumModel(LatchCell(), ThresholdHead(), width=N + 1)


@pytest.fixture
def latch_metrics(tmp_path, monkeypatch):
    splits = {"in_distribution": latch_inputs(IN_DIST), "harder": latch_inputs(HARDER)}
    return run_evaluation(tmp_path, monkeypatch, latch_model(), splits, attack_examples=ATTACKED)


DESIGNS = {"in_distribution": IN_DIST, "harder": HARDER}


def test_the_record_says_which_budgets_it_was_read_at(latch_metrics):
    m = latch_metrics
    assert (m["status"], m["train_iters"], m["max_iters"], m["aa_iters"]) == ("ok", TRAIN_ITERS, MAX_ITERS, AA_ITERS)
    assert m["split_order"] == ["in_distribution", "harder"]
    assert all(m["splits"][s]["n_examples"] == N for s in DESIGNS)


@pytest.mark.parametrize("split", DESIGNS)
def test_accuracy_at_each_budget_k_is_read_after_exactly_k_iterations(latch_metrics, split):
    recorded = latch_metrics["splits"][split]["accuracy"]
    assert len(recorded) == MAX_ITERS
    assert recorded == pytest.approx(expected_accuracy(DESIGNS[split]), abs=1e-6)


@pytest.mark.parametrize("split", DESIGNS)
def test_residual_median_is_the_median_relative_step_after_k_iterations(latch_metrics, split):
    recorded = latch_metrics["splits"][split]["residual_median"]
    assert recorded == pytest.approx(expected_residual_median(DESIGNS[split]), rel=1e-4)


@pytest.mark.parametrize("split", DESIGNS)
def test_aa_is_the_cosine_of_hidden_states_from_zeros_and_from_another_examples_state(latch_metrics, split):
    """On the logits this model's AA would be +-1; from a noisy first start, the noise would be kept
    in m; from the example's own state, or zeros, or noise for the second run, the code would not be
    orthogonal: each gives other numbers than these."""
    s = latch_metrics["splits"][split]
    assert len(s["aa_per_example"]) == AA_EXAMPLES
    expected = expected_aa(DESIGNS[split], s["aa_per_example"])
    assert s["aa_per_example"] == pytest.approx(expected.tolist(), rel=1e-5)
    assert s["aa"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert max(abs(v) for v in s["aa_per_example"]) < 0.99  # the pin is not the trivial AA of 1


@pytest.mark.parametrize("split", DESIGNS)
def test_aa_all_pairs_is_the_mean_over_every_input_and_start_diagonal_included(latch_metrics, split):
    assert latch_metrics["splits"][split]["aa_all_pairs"] == pytest.approx(expected_all_pairs(DESIGNS[split]),
                                                                           rel=1e-5)


@pytest.mark.parametrize("split", DESIGNS)
def test_correctness_beside_per_example_aa_is_read_at_the_aa_budget(latch_metrics, split):
    s = latch_metrics["splits"][split]
    expected = expected_correct(DESIGNS[split][:AA_EXAMPLES], AA_ITERS)
    assert s["correct_at_aa_iters"] == expected
    # the pin tells the AA budget from its neighbours and from iteration 1
    assert all(expected_correct(DESIGNS[split][:AA_EXAMPLES], k) != expected for k in (1, AA_ITERS - 1, AA_ITERS + 1))


def test_attack_reports_zero_init_accuracy_at_the_aa_budget(latch_metrics):
    attack = latch_metrics["splits"]["in_distribution"]["attack"]
    assert attack["n_examples"] == ATTACKED
    assert attack["accuracy_zero"] == pytest.approx(np.mean(expected_correct(IN_DIST[:ATTACKED], AA_ITERS)))
    assert attack["accuracy_zero"] != pytest.approx(np.mean(expected_correct(IN_DIST[:ATTACKED], 1)))
    assert all(-1 <= attack[k] <= 1 for k in ("aa_before", "aa_after"))
    assert all(0 <= attack[k] <= 1 for k in ("accuracy_before", "accuracy_after"))
    assert "attack" not in latch_metrics["splits"]["harder"]  # the attack runs in distribution only


def test_dynamics_and_traces_of_the_aa_examples(tmp_path, monkeypatch):
    x, y = dynamics_inputs()
    model = EquilibriumModel(DynamicsCell(), FirstCoordinateHead(), width=2)
    metrics = run_evaluation(tmp_path, monkeypatch, model, {"harder": (x, y)}, max_iters=DYN_ITERS,
                             aa_iters=DYN_ITERS, aa_examples=DYN_AA, aa_pairs_batch=2,
                             cycle_max_period=DYN_MAX_PERIOD)
    s = metrics["splits"]["harder"]
    assert s["dynamics"] == {"fixed_point": 3, "cycle": 4, "moving": 3}  # the first 10 examples only
    assert s["cycle_periods"] == [2, 3, 4]  # the period-6 rotation is beyond cycle_max_period
    traces = np.array(s["residual_traces"])
    assert traces.shape == (8, DYN_ITERS)  # the first 8 examples, one row each
    expected = np.stack([expected_trace(kind, period) for kind, period in DYNAMICS[:8]])
    assert np.allclose(traces, expected, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- what the report reads of a record


@pytest.fixture
def latch_records(latch_metrics, tmp_path):
    return load_records([str(tmp_path / "metrics.json")])


def test_summary_frame_reads_the_training_budget_the_largest_budget_and_the_best(latch_records):
    summary = summary_frame(latch_records).set_index("split")
    for split, design in DESIGNS.items():
        per_example = latch_records[0]["splits"][split]["aa_per_example"]
        acc = expected_accuracy(design)
        row = summary.loc[split]
        assert row["acc_at_train_iters"] == pytest.approx(acc[TRAIN_ITERS - 1])
        assert row["acc_at_max_iters"] == pytest.approx(acc[MAX_ITERS - 1])
        assert row["acc_best"] == pytest.approx(max(acc))
        assert row["aa"] == pytest.approx(float(expected_aa(design, per_example).mean()), rel=1e-5)
        assert row["aa_all_pairs"] == pytest.approx(expected_all_pairs(design), rel=1e-5)
    # the pins are not vacuous: in distribution, each value differs from its neighbours' and the others
    acc = expected_accuracy(IN_DIST)
    at_train, at_max = acc[TRAIN_ITERS - 1], acc[-1]
    assert at_train not in (acc[TRAIN_ITERS - 2], acc[TRAIN_ITERS], at_max, max(acc))
    assert at_max not in (acc[-2], acc[0], max(acc))


def test_curve_frame_numbers_iterations_from_one(latch_records):
    curve = curve_frame(latch_records)
    for split, design in DESIGNS.items():
        rows = curve[curve["split"] == split].set_index("iteration")
        assert list(rows.index) == list(range(1, MAX_ITERS + 1))
        assert rows["accuracy"].tolist() == pytest.approx(expected_accuracy(design))
        assert rows["residual_median"].tolist() == pytest.approx(expected_residual_median(design), rel=1e-4)


def test_per_example_frame_pairs_each_aa_with_its_own_correctness(latch_records):
    frame = per_example_frame(latch_records)
    for split, design in DESIGNS.items():
        rows = frame[frame["split"] == split]
        per_example = latch_records[0]["splits"][split]["aa_per_example"]
        assert rows["aa"].tolist() == pytest.approx(expected_aa(design, per_example).tolist(), rel=1e-5)
        assert rows["correct"].tolist() == expected_correct(design[:AA_EXAMPLES], AA_ITERS)


def test_depth_frame_reads_accuracy_after_depth_iterations_on_the_hardest_split(latch_records):
    frame = depth_frame(latch_records)
    acc = expected_accuracy(HARDER)
    assert set(frame["split"]) == {"harder"}
    # depths 1x, 2x, 4x the training budget (2, 4, 8), the last one also the largest budget
    assert frame["depth"].tolist() == [2, 4, 8]
    assert frame["accuracy"].tolist() == pytest.approx([acc[1], acc[3], acc[7]])
    assert acc[1] not in (acc[0], acc[2]) and acc[3] not in (acc[2], acc[4]) and acc[7] != acc[6]  # not vacuous


def test_gradient_study_reads_residual_at_the_training_budget_and_accuracy_at_the_largest(latch_records):
    frame = study_values(latch_records).set_index(["metric", "split"])["value"]
    assert frame[("residual", "in_distribution")] == pytest.approx(expected_residual_median(IN_DIST)[TRAIN_ITERS - 1],
                                                                   rel=1e-5)
    assert frame[("accuracy", "in_distribution")] == pytest.approx(expected_accuracy(IN_DIST)[-1])
    assert frame[("accuracy", "harder")] == pytest.approx(expected_accuracy(HARDER)[-1])
    per_example = latch_records[0]["splits"]["harder"]["aa_per_example"]
    assert frame[("aa", "harder")] == pytest.approx(float(expected_aa(HARDER, per_example).mean()), rel=1e-5)
