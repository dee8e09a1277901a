"""song2023's evaluation pinned on a hand-made model whose answers are known.

The model is not trained: its state counts the steps taken (z_k = k everywhere) and its head says
class 1 exactly when the count equals a chosen step T, class 0 otherwise. The datasets are written
by hand so that each part has a known answer: the examples a split should be read on have label 1
everywhere, the examples it must not be read on (the training part of the in-distribution prefix
sums, the training images) have label 0. So a metric read on the wrong examples, or after the wrong
number of steps, gives 0 where the right reading gives 1, and the test states which mistake it
catches.
"""

import copy
import json

import pytest
import torch
from torch import nn

from conftest import ROOT
from implicit_repro import config, train
from implicit_repro.checkpoint import save_checkpoint
from implicit_repro.data.store import save_dataset
from implicit_repro.evaluation import EvalJob, evaluate
from implicit_repro.papers.song2023 import grid

SMOKE = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                    {"scale": "smoke"})["song2023"]


class ClockNet(nn.Module):
    """z_k = k (every position, every example); logits say class 1 exactly when z = ``at``."""

    masked = False  # what count_parameters asks of a song2023 model

    def __init__(self, at: int, classes: int, dims: int):
        super().__init__()
        self.at, self.classes, self.dims = at, classes, dims
        self.scale = nn.Parameter(torch.ones(()))  # a weight to save and load

    def initial_state(self, x):
        return torch.zeros(x.shape[0], 1, *x.shape[2:])

    def step(self, z, x, i=0):
        return z + self.scale

    def readout(self, z):
        hit = (z == self.at).float()  # (B, 1, ...)
        logits = torch.cat([1 - hit, hit, torch.zeros(z.shape[0], self.classes - 2, *z.shape[2:])], dim=1)
        return logits if self.dims == 1 else logits.mean(dim=(2, 3))

    def forward(self, x, iters, z0=None):
        z = self.initial_state(x) if z0 is None else z0
        for i in range(iters):
            z = self.step(z, x, i)
        return self.readout(z)


def _run(name: str, task: str):
    return next(r for r in grid.runs(SMOKE) if r.run == name and r.task == task and r.seed == 0)


def _evaluate(tmp_path, monkeypatch, run, datasets: dict[str, dict], at: int, classes: int, dims: int,
              net=None) -> dict:
    spec = copy.deepcopy(run.eval_spec)
    paths = {}
    for split, tensors in datasets.items():
        paths[split] = tmp_path / f"{split}.pt"
        save_dataset(paths[split], tensors, {"task": spec["task"], "split": split})
    spec["splits"] = [[name, str(paths[name])] for name, _ in spec["splits"]]
    net = net or ClockNet
    model = net(at, classes, dims)
    monkeypatch.setattr(train, "make_model", lambda spec: net(at, classes, dims))  # what trained_model builds
    save_checkpoint(tmp_path / "model.pt", {"model": model.state_dict(), "status": "ok", "spec": spec})
    evaluate(EvalJob(spec, tmp_path / "model.pt", tmp_path / "metrics.json"))
    return json.loads((tmp_path / "metrics.json").read_text())


# ---------------------------------------------------------------- prefix sums (claim 5)

def _sequences(train_label: int, held_label: int, n: int, n_bits: int, train_fraction: float) -> dict:
    n_train = int(n * train_fraction)
    targets = torch.cat([torch.full((n_train, n_bits), train_label), torch.full((n - n_train, n_bits), held_label)])
    return {"inputs": torch.zeros(n, n_bits, dtype=torch.long), "targets": targets.long()}


@pytest.fixture
def prefix_metrics(tmp_path, monkeypatch):
    run = _run("wt/L4_w4_d1", "prefix_sums")
    spec = run.eval_spec
    fraction, names = spec["data"]["train_fraction"], [name for name, _ in spec["splits"]]
    data = {names[0]: _sequences(0, 1, 40, 6, fraction)}  # held-out part: label 1; training part: label 0
    data.update({name: _sequences(1, 1, 20, 8, 1.0) for name in names[1:]})
    metrics = _evaluate(tmp_path, monkeypatch, run, data, at=spec["train"]["iters"], classes=2, dims=1)
    return spec, metrics


def test_prefix_sum_curves_read_accuracy_after_exactly_k_steps(prefix_metrics):
    spec, metrics = prefix_metrics
    budget, max_iters = spec["train"]["iters"], spec["eval"]["max_iters"]
    for split, curve in metrics["curves"].items():
        assert len(curve) == max_iters
        assert curve == [1.0 if k == budget else 0.0 for k in range(1, max_iters + 1)], split


def test_prefix_sum_in_distribution_accuracy_is_the_held_out_part(prefix_metrics):
    # Read on the training part (a leak), every example would be wrong at the budget: 0.
    _, metrics = prefix_metrics
    assert metrics["curves"]["in_distribution"][metrics["train_iters"] - 1] == 1.0


def test_prefix_sum_test_accuracy_is_read_at_the_training_budget(prefix_metrics):
    # Read at the last iteration (or any other), it would be 0.
    spec, metrics = prefix_metrics
    assert metrics["train_iters"] == spec["train"]["iters"] < spec["eval"]["max_iters"]
    assert metrics["test_accuracy"] == 1.0


# ---------------------------------------------------------------- images (claims 2-4)

def _images(label: int, n: int, held_label: int | None = None, fraction: float = 1.0) -> dict:
    """``n`` images labelled ``label``; with ``held_label``, the part from ``fraction`` on has that label."""
    targets = torch.full((n,), label)
    if held_label is not None:
        targets[int(n * fraction):] = held_label
    return {"inputs": torch.zeros(n, 1, 8, 8), "targets": targets.long()}


def test_image_accuracy_is_on_the_test_part_and_the_validation_tail_at_the_trained_depth(tmp_path, monkeypatch):
    run = _run("wt/L2_w4_d1", "digits")
    depth, fraction = run.eval_spec["model"]["depth"], run.eval_spec["data"]["train_fraction"]
    # The training file: label 0 on the part trained on, 1 on the validation tail. Read on the trained
    # part (a leak), validation accuracy would be 0.
    data = {"validation": _images(0, 50, held_label=1, fraction=fraction), "test": _images(1, 30)}
    metrics = _evaluate(tmp_path, monkeypatch, run, data, at=depth, classes=10, dims=2)
    assert metrics["test_accuracy"] == 1.0 and metrics["val_accuracy"] == 1.0
    # A model right one step past the depth is wrong at it: the evaluation runs exactly ``depth`` steps.
    (tmp_path / "late").mkdir()
    late = _evaluate(tmp_path / "late", monkeypatch, run, data, at=depth + 1, classes=10, dims=2)
    assert late["test_accuracy"] == 0.0 and late["val_accuracy"] == 0.0


# ---------------------------------------------------------------- a DEQ scored with its own solver (claim 5)

class SlowAffineNet(ClockNet):
    """z <- 0.99 z + 0.01 (fixed point 1): plain iteration from 0 is at 1 - 0.99^k, far from 1 for
    every budget the smoke sweep reaches, while Anderson solves an affine map in a few evaluations.
    The head says class 1 exactly when z is within 0.01 of the fixed point."""

    def step(self, z, x, i=0):
        return 0.99 * z * self.scale + 0.01

    def readout(self, z):
        hit = ((z - 1).abs() < 0.01).float()
        return torch.cat([1 - hit, hit], dim=1)


def test_a_prefix_sum_deq_is_read_where_its_own_solver_stops(tmp_path, monkeypatch):
    run = _run("deq_ift/L4_w4_d1", "prefix_sums")
    spec = run.eval_spec
    assert spec["eval"]["deq"]["solver"] == "anderson"
    names = [name for name, _ in spec["splits"]]
    data = {names[0]: _sequences(1, 1, 40, 6, spec["data"]["train_fraction"])}
    data.update({name: _sequences(1, 1, 20, 8, 1.0) for name in names[1:]})
    metrics = _evaluate(tmp_path, monkeypatch, run, data, at=0, classes=2, dims=1, net=SlowAffineNet)
    for curve in metrics["curves"].values():
        # Plain iteration would give 0 at every budget up to max_iters (1 - 0.99^k < 0.99 for k < 458).
        assert curve[0] == 0.0 and curve[-1] == 1.0
