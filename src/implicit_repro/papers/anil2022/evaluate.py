"""anil2022's evaluation of one trained model: accuracy per test-time iteration, residuals, AA (and
the adversarial-initial-state attack and limit cycles) on every split. The job's spec carries
"eval" and "splits" ([[split name, data path], ...]) beside the training spec."""

from __future__ import annotations

import torch

from implicit_repro.checkpoint import load_weights
from implicit_repro.data.store import load_dataset
from implicit_repro.evaluation import EvalJob
from implicit_repro.path_independence import all_pairs_alignment, asymptotic_alignment
from implicit_repro.seeding import generator
from implicit_repro.specs import require
from implicit_repro.sweep import batched_sweep
from implicit_repro.papers.anil2022.adversarial_init import adversarial_init_attack
from implicit_repro.papers.anil2022.limit_cycles import KIND_NAMES, trace_and_classify
from implicit_repro.train import job_task, make_model

IN_DISTRIBUTION = "in_distribution"
TRACES_KEPT = 8  # per-example residual traces stored per split, for the convergence figure


def split_examples(spec: dict, split: str, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``eval.n_examples`` test examples of a split; in-distribution ones come from the
    part of the training length that training did not see."""
    task = job_task(spec)
    inputs, targets = data["inputs"], data["targets"]
    if split == IN_DISTRIBUTION:
        n_train = int(len(inputs) * spec["data"]["train_fraction"])
        inputs, targets = inputs[n_train:], targets[n_train:]
    n = spec["eval"]["n_examples"]
    return task.model_input(inputs[:n]), task.target(targets[:n])


# What this evaluation reads of a spec beyond the training keys (checked before any work starts).
SPEC_KEYS = tuple(f"eval.{k}" for k in ("max_iters", "n_examples", "batch_size", "aa_iters", "aa_examples",
                                         "aa_pairs_batch", "attack_examples", "attack_steps", "attack_lr",
                                         "cycle_max_period", "cycle_tol"))


def evaluate(job: EvalJob) -> dict:
    spec, cfg = require(job.spec, SPEC_KEYS, "--spec"), job.spec["eval"]
    ckpt = job.checkpoint
    result = {
        "paper": spec["paper"], "task": spec["task"], "intervention": spec["intervention"],
        "gradient": spec["train"]["gradient"], "seed": spec["seed"], "status": ckpt["status"], "train_iters": spec["train"]["iters"],
        "max_iters": cfg["max_iters"], "aa_iters": cfg["aa_iters"],
        "split_order": [name for name, _ in spec["splits"]], "splits": {},
    }
    if ckpt["status"] != "ok":
        return result  # a diverged run is a result: recorded, not evaluated
    model = make_model(spec)
    load_weights(model, ckpt["model"], job.model_path)
    model.eval()
    task = job_task(spec)
    for split, path in spec["splits"]:
        x, y = split_examples(spec, split, load_dataset(path))
        sweep = batched_sweep(model, task, x, y, cfg["max_iters"], cfg["batch_size"])
        result["splits"][split] = {
            "n_examples": len(x),
            "accuracy": sweep["correct"].float().mean(1).tolist(),
            "residual_median": sweep["residual"].median(1).values.tolist(),
            **_alignment(model, x, sweep["correct"], cfg, spec, split),
            **_dynamics(model, x, cfg),
        }
        if split == IN_DISTRIBUTION and cfg["attack_examples"] > 0:
            result["splits"][split]["attack"] = _attack(model, task, x, y, cfg, spec)
    return result


def _alignment(model, x, correct, cfg, spec, split) -> dict:
    """AA on the first ``aa_examples`` of the split, with their correctness after ``aa_iters``
    iterations from the default init (read off the sweep: the config keeps aa_iters <= max_iters)."""
    n = min(cfg["aa_examples"], len(x))
    xs = x[:n]
    g = generator(spec["paper"], spec["task"], "aa", spec["seed"], split)
    per_example = asymptotic_alignment(model.step, xs, model.initial_state(xs), cfg["aa_iters"], g)
    b = min(cfg["aa_pairs_batch"], n)
    pairs = all_pairs_alignment(model.step, xs[:b], model.initial_state(xs[:b]), cfg["aa_iters"])
    return {
        "aa": per_example.mean().item(),
        "aa_all_pairs": pairs.mean().item(),
        "aa_per_example": per_example.tolist(),
        "correct_at_aa_iters": correct[cfg["aa_iters"] - 1, :n].tolist(),
    }


def _dynamics(model, x, cfg) -> dict:
    """Where the AA examples' trajectories end up (fixed point, limit cycle, still moving) and
    their residual trace: the material of fig_convergence_traces."""
    xs = x[: cfg["aa_examples"]]
    iters, max_period = cfg["max_iters"], cfg["cycle_max_period"]
    window = min(16, iters + 1 - max_period)
    traced = trace_and_classify(model.step, xs, model.initial_state(xs), iters, tol=cfg["cycle_tol"],
                                max_period=max_period, window=window)
    kinds = traced["classification"].kind
    periods = traced["classification"].period
    return {
        "dynamics": {name: int((kinds == code).sum()) for code, name in KIND_NAMES.items()},
        "cycle_periods": sorted({int(p) for p, k in zip(periods, kinds) if KIND_NAMES[int(k)] == "cycle"}),
        "residual_traces": traced["residual"][:, : TRACES_KEPT].T.tolist(),
    }


def _attack(model, task, x, y, cfg, spec) -> dict:
    """The adversarial-initial-state stress test (table1) on the first ``attack_examples``
    in-distribution examples: starts chosen to pull the state away from the zero-init one."""
    n = cfg["attack_examples"]
    xs, ys = x[:n], y[:n]
    result = adversarial_init_attack(
        model.step, model.readout, xs, cfg["aa_iters"], generator(spec["paper"], spec["task"], "attack", spec["seed"]),
        objective="alignment", targets=ys, correct=task.correct, attack_steps=cfg["attack_steps"],
        lr=cfg["attack_lr"], init_std=spec["intervention_params"]["init_std"], zeros=model.initial_state(xs),
    )
    return {"n_examples": len(xs), **result.summary()}
