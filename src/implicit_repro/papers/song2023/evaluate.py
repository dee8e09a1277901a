"""song2023's evaluation of one trained run: test accuracy, parameter counts, and the training
measurements (time, memory, solver statistics, divergence) read from the run's training log.

- Vision runs: accuracy on the test part at the trained depth; a DEQ is solved from zero by the
  config's solver (``eval.deq``) and read out at its fixed point.
- Prefix-sum runs (other_paradigm): accuracy after every test-time iteration 1..max_iters on each
  split in one pass (``sweep.batched_sweep``; a masked net cycles its masks past its depth); a DEQ
  at each budget k is read where its own solver stops when allowed k evaluations.

The metrics file is deterministic on one machine: it holds no wall-clock time. Training time per
epoch and per step are read from the training logs by the report (``results.collect.load_records``).
"""

from __future__ import annotations

import torch

from implicit_repro.data.store import load_dataset
from implicit_repro.deq import deq_fixed_point
from implicit_repro.deq.solvers import read_every_budget
from implicit_repro.evaluation import EvalJob
from implicit_repro.io import read_jsonl
from implicit_repro.papers.song2023.models import count_parameters
from implicit_repro.specs import require
from implicit_repro.sweep import batched_sweep
from implicit_repro.train import job_task, own_epochs, trained_model

IN_DISTRIBUTION = "in_distribution"
VALIDATION = "validation"  # images: the training part's tail (``data.train_fraction`` on), never trained on


# What this evaluation reads of a spec beyond the training keys (checked before any work starts).
SPEC_KEYS = ("run", "studies", "match_densities", "model.variant", "model.depth", "model.width", "model.density",
             "eval.batch_size", "eval.deq")


def evaluate(job: EvalJob) -> dict:
    spec = require(job.spec, SPEC_KEYS, "--spec")
    ckpt = job.checkpoint
    history = read_jsonl(job.log_path) if job.log_path else []
    m = spec["model"]
    model = trained_model(spec, ckpt, job.model_path).to(job.device)
    result = {
        "paper": spec["paper"], "task": spec["task"], "run": spec["run"],
        "variant": m["variant"], "depth": m["depth"], "width": m["width"], "density": m["density"],
        "seed": spec["seed"], "studies": spec["studies"], "match_densities": spec["match_densities"],
        "status": ckpt["status"], "diverged_reason": _diverged_reason(history),
        **{f"params_{k}": v for k, v in count_parameters(model).items()},
        **_training_measurements(history),
        "train_iters": spec["train"]["iters"], "split_order": [name for name, _ in spec["splits"]],
        "test_accuracy": None, "val_accuracy": None, "solves_reaching_tol": None, "val_solves_reaching_tol": None,
        "curves": {},
    }
    if ckpt["status"] == "ok":
        task = job_task(spec)
        for split, path in spec["splits"]:
            x, y = (t.to(job.device) for t in _examples(spec, split, load_dataset(path)))
            if spec["task"] == "prefix_sums" and spec["eval"]["deq"] is not None:
                result["curves"][split] = _solver_curve(model, task, x, y, spec)
            elif spec["task"] == "prefix_sums":
                sweep = batched_sweep(model, task, x, y, spec["eval"]["max_iters"], spec["eval"]["batch_size"])
                result["curves"][split] = sweep.correct.float().mean(1).tolist()
            else:
                accuracy, reached = _accuracy(model, task, x, y, spec)
                if split == VALIDATION:
                    result["val_accuracy"], result["val_solves_reaching_tol"] = accuracy, reached
                else:
                    result["test_accuracy"], result["solves_reaching_tol"] = accuracy, reached
        if spec["task"] == "prefix_sums":
            result["test_accuracy"] = result["curves"][IN_DISTRIBUTION][spec["train"]["iters"] - 1]
    return result


def _examples(spec: dict, split: str, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's examples; the in-distribution prefix sums and the images' validation split are the
    part of the training file that training did not see."""
    task = job_task(spec)
    inputs, targets = data["inputs"], data["targets"]
    n = spec["eval"].get("n_examples", len(inputs))
    if split in (IN_DISTRIBUTION, VALIDATION):
        n_train = int(len(inputs) * spec["data"]["train_fraction"])
        inputs, targets = inputs[n_train:], targets[n_train:]
        if split == IN_DISTRIBUTION:
            n = spec["eval"].get("n_in_distribution", n)
    return task.model_input(inputs[:n]), task.target(targets[:n])


@torch.no_grad()
def _accuracy(model, task, x: torch.Tensor, y: torch.Tensor, spec: dict) -> tuple[float, float | None]:
    """Accuracy at the trained depth (a DEQ: at the solver's fixed point), and for a DEQ the
    fraction of examples whose solve reached the tolerance (relative residual of the point returned)."""
    deq = spec["eval"]["deq"]
    correct, reached = 0, 0
    for i in range(0, len(x), spec["eval"]["batch_size"]):
        xb, yb = x[i:i + spec["eval"]["batch_size"]], y[i:i + spec["eval"]["batch_size"]]
        if deq is None:
            logits = model(xb, spec["model"]["depth"])
        else:
            z, stats = deq_fixed_point(lambda z: model.step(z, xb), model.initial_state(xb), solver=deq["solver"],
                                       grad="ift", max_iter=deq["max_iter"], tol=deq["tol"])
            logits = model.readout(z)
            reached += int((stats.residual <= deq["tol"]).sum())
        correct += int(task.correct(logits, yb).sum())
    return correct / len(x), (reached / len(x) if deq is not None else None)


@torch.no_grad()
def _solver_curve(model, task, x: torch.Tensor, y: torch.Tensor, spec: dict) -> list[float]:
    """A DEQ's accuracy at each test-time budget k = 1..max_iters, each read at the point its own
    solver (the one it trained with, ``eval.deq``) returns when allowed k evaluations: a DEQ is
    scored as the DEQ it is, not by plain iteration of its block."""
    deq, batch, budget = spec["eval"]["deq"], spec["eval"]["batch_size"], spec["eval"]["max_iters"]
    correct = [0] * budget
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        f, z0 = (lambda z: model.step(z, xb)), model.initial_state(xb)
        read = lambda z: int(task.correct(model.readout(z), yb).sum())  # noqa: E731
        if deq["solver"] == "anderson":  # every budget from one solve: the same points (read_every_budget)
            per_budget = read_every_budget(f, z0, budget, deq["tol"], read)
        else:
            per_budget = [read(deq_fixed_point(f, z0, solver=deq["solver"], grad="ift", max_iter=k, tol=deq["tol"])[0])
                          for k in range(1, budget + 1)]
        correct = [c + r for c, r in zip(correct, per_budget)]
    return [c / len(x) for c in correct]


def _diverged_reason(history: list[dict]) -> str | None:
    return next((h.get("reason") for h in history if h.get("status") == "diverged"), None)


def _training_measurements(history: list[dict]) -> dict:
    ok = own_epochs(history)
    last = ok[-1] if ok else {}
    solver = None
    if last.get("residual") is not None:
        solver = {"fwd_nfe": last["fwd_nfe"], "bwd_nfe": last.get("bwd_nfe"), "residual": last["residual"]}
    keys = ("epoch", "status", "loss", "train_acc", "fwd_nfe", "bwd_nfe", "residual")
    return {
        "memory_bytes": max((h["memory_bytes"] for h in ok), default=None),
        "memory_measure": last.get("memory_measure"),
        "solver": solver,
        "epochs": [{k: h.get(k) for k in keys} for h in history],
    }
