"""song2023's evaluation of one trained run: test accuracy, parameter counts, and the training
measurements (time, memory, solver statistics, divergence) read from the run's training log.

- Vision runs: accuracy on the test part at the trained depth; a DEQ is solved from zero by the
  config's solver (``eval.deq``) and read out at its fixed point.
- Prefix-sum runs (other_paradigm): accuracy after every test-time iteration 1..max_iters on each
  split in one pass (``sweep.batched_sweep``; a masked net cycles its masks past its depth).

The metrics file is deterministic on one machine: it holds no wall-clock time. Training time per
epoch and per step are read from the training logs by the report (``results.collect.load_records``).
"""

from __future__ import annotations

import torch

from implicit_repro.checkpoint import load_weights
from implicit_repro.data.store import load_dataset
from implicit_repro.deq import deq_fixed_point
from implicit_repro.evaluation import EvalJob
from implicit_repro.io import read_jsonl
from implicit_repro.papers.song2023.models import count_parameters
from implicit_repro.specs import require
from implicit_repro.sweep import batched_sweep
from implicit_repro.train import job_task, make_model

IN_DISTRIBUTION = "in_distribution"


# What this evaluation reads of a spec beyond the training keys (checked before any work starts).
SPEC_KEYS = ("run", "studies", "match_density", "model.variant", "model.depth", "model.width", "model.density",
             "eval.batch_size", "eval.deq")


def evaluate(job: EvalJob) -> dict:
    spec = require(job.spec, SPEC_KEYS, "--spec")
    ckpt = job.checkpoint
    history = read_jsonl(job.log_path) if job.log_path else []
    m = spec["model"]
    model = make_model(spec)
    load_weights(model, ckpt["model"], job.model_path)
    model.to(job.device).eval()
    result = {
        "paper": spec["paper"], "task": spec["task"], "run": spec["run"],
        "variant": m["variant"], "depth": m["depth"], "width": m["width"], "density": m["density"],
        "seed": spec["seed"], "studies": spec["studies"], "match_density": spec["match_density"],
        "status": ckpt["status"], "diverged_reason": _diverged_reason(history),
        **{f"params_{k}": v for k, v in count_parameters(model).items()},
        **_training_measurements(history),
        "train_iters": spec["train"]["iters"], "split_order": [name for name, _ in spec["splits"]],
        "test_accuracy": None, "curves": {},
    }
    if ckpt["status"] == "ok":
        task = job_task(spec)
        for split, path in spec["splits"]:
            x, y = (t.to(job.device) for t in _examples(spec, split, load_dataset(path)))
            if spec["task"] == "prefix_sums":
                sweep = batched_sweep(model, task, x, y, spec["eval"]["max_iters"], spec["eval"]["batch_size"])
                result["curves"][split] = sweep.correct.float().mean(1).tolist()
            else:
                result["test_accuracy"] = _accuracy(model, task, x, y, spec)
        if spec["task"] == "prefix_sums":
            result["test_accuracy"] = result["curves"][IN_DISTRIBUTION][spec["train"]["iters"] - 1]
    return result


def _examples(spec: dict, split: str, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's examples; the in-distribution prefix sums are the part training did not see."""
    task = job_task(spec)
    inputs, targets = data["inputs"], data["targets"]
    n = spec["eval"].get("n_examples", len(inputs))
    if split == IN_DISTRIBUTION:
        n_train = int(len(inputs) * spec["data"]["train_fraction"])
        inputs, targets = inputs[n_train:], targets[n_train:]
        n = spec["eval"].get("n_in_distribution", n)
    return task.model_input(inputs[:n]), task.target(targets[:n])


@torch.no_grad()
def _accuracy(model, task, x: torch.Tensor, y: torch.Tensor, spec: dict) -> float:
    deq = spec["eval"]["deq"]
    correct = 0
    for i in range(0, len(x), spec["eval"]["batch_size"]):
        xb, yb = x[i:i + spec["eval"]["batch_size"]], y[i:i + spec["eval"]["batch_size"]]
        if deq is None:
            logits = model(xb, spec["model"]["depth"])
        else:
            z, _ = deq_fixed_point(lambda z: model.step(z, xb), model.initial_state(xb), solver=deq["solver"],
                                   grad="ift", max_iter=deq["max_iter"], tol=deq["tol"])
            logits = model.readout(z)
        correct += int(task.correct(logits, yb).sum())
    return correct / len(x)


def _diverged_reason(history: list[dict]) -> str | None:
    return next((h.get("reason") for h in history if h.get("status") == "diverged"), None)


def _training_measurements(history: list[dict]) -> dict:
    ok = [h for h in history if h.get("status") == "ok"]
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
