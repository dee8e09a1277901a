"""anil2022's evaluation of one trained model: accuracy per test-time iteration, residuals, AA (and
the adversarial-initial-state attack and limit cycles) on every split. The job's spec carries
"eval" and "splits" ([[split name, data path], ...]) beside the training spec.

Each split's zero-init trajectory is computed once (``sweep.batched_sweep``) and read four ways:
accuracy and residual per iteration, the states AA's first solve reaches (after ``aa_iters``), the
tail the dynamics classification reads, and the residual traces of the convergence figure. Every
iteration, the sweep, the AA solves and the attack's before/after solves stop iterating an example
once its state has settled (``eval.early_exit_tol``: 0 is bit-exact, hence the full run's metrics;
null turns early exit off); the metrics record the tolerance and the work it saved. Every solve
runs ``eval.batch_size`` examples at a time (a config value per task, for the GPU's memory).

All random draws (AA's permutations, the attack's starts) come from seeded CPU generators, so they
are the same on every device; the model and the examples move to ``job.device``."""

from __future__ import annotations

import torch

from implicit_repro.data.store import load_dataset
from implicit_repro.evaluation import EvalJob
from implicit_repro.iteration import iterate_to_budget
from implicit_repro.layout import channels_last, channels_last_model
from implicit_repro.path_independence import alignment_from_first, all_pairs_from_first
from implicit_repro.seeding import generator
from implicit_repro.specs import require
from implicit_repro.sweep import Readings, batched_sweep
from implicit_repro.papers.anil2022.adversarial_init import adversarial_init_attack
from implicit_repro.papers.anil2022.limit_cycles import KIND_NAMES, classify_tail, tail_length
from implicit_repro.train import job_task, trained_model

IN_DISTRIBUTION = "in_distribution"
TRACES_KEPT = 8  # per-example residual traces stored per split, for the convergence figure
CYCLE_WINDOW = 16  # steps over which a period must hold to count (limit_cycles.classify_tail)


def split_examples(spec: dict, split: str, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``eval.n_examples`` test examples of a split; in-distribution ones (the first
    ``eval.n_in_distribution``, default n_examples) come from the part of the training length that
    training did not see. The config's check (grid.check) makes sure each split holds as many."""
    task = job_task(spec)
    inputs, targets = data["inputs"], data["targets"]
    n = spec["eval"]["n_examples"]
    if split == IN_DISTRIBUTION:
        n_train = int(len(inputs) * spec["data"]["train_fraction"])
        inputs, targets = inputs[n_train:], targets[n_train:]
        n = spec["eval"].get("n_in_distribution", n)
    return task.model_input(inputs[:n]), task.target(targets[:n])


# What this evaluation reads of a spec beyond the training keys (checked before any work starts).
SPEC_KEYS = tuple(f"eval.{k}" for k in ("max_iters", "n_examples", "batch_size", "aa_iters", "aa_examples",
                                         "aa_pairs_batch", "attack_examples", "attack_steps", "attack_lr",
                                         "cycle_max_period", "cycle_tol"))


def early_exit_tol(cfg: dict) -> float | None:
    """The configured early-exit tolerance (absent from older specs: no early exit, as before)."""
    return cfg.get("early_exit_tol")


def evaluate(job: EvalJob) -> dict:
    spec, cfg = require(job.spec, SPEC_KEYS, "--spec"), job.spec["eval"]
    ckpt = job.checkpoint
    result = {
        "paper": spec["paper"], "task": spec["task"], "intervention": spec["intervention"],
        "gradient": spec["train"]["gradient"], "seed": spec["seed"], "status": ckpt["status"], "train_iters": spec["train"]["iters"],
        "max_iters": cfg["max_iters"], "aa_iters": cfg["aa_iters"],
        "split_order": [name for name, _ in spec["splits"]], "splits": {},
    }
    tol = early_exit_tol(cfg)
    result["early_exit"] = {"tol": tol, "example_steps": 0, "of": 0}
    if ckpt["status"] != "ok":
        return result  # a diverged run is a result: recorded, not evaluated
    model = channels_last_model(trained_model(spec, ckpt, job.model_path).to(job.device))
    task = job_task(spec)
    work = Work()
    for split, path in spec["splits"]:
        x, y = (t.to(job.device) for t in split_examples(spec, split, load_dataset(path)))
        x = channels_last(x)
        keep = min(cfg["aa_examples"], len(x))
        window = dynamics_window(cfg)
        readings = Readings(keep=keep, at=(cfg["aa_iters"],), tail=tail_length(cfg["cycle_max_period"], window))
        sweep = batched_sweep(model, task, x, y, cfg["max_iters"], cfg["batch_size"], readings, tol)
        work.add(sweep.computed, sweep.budget)
        z_first = sweep.states[cfg["aa_iters"]]
        result["splits"][split] = {
            "n_examples": len(x),
            "accuracy": sweep.correct.float().mean(1).tolist(),
            "residual_median": sweep.residual.median(1).values.tolist(),
            **_alignment(model, x, z_first, sweep.correct, cfg, spec, split, tol, work),
            **_dynamics(sweep, cfg, window),
        }
        if split == IN_DISTRIBUTION and cfg["attack_examples"] > 0:
            result["splits"][split]["attack"] = _attack(model, task, x, y, cfg, spec, tol)
    result["early_exit"].update(example_steps=work.computed, of=work.budget)
    return result


class Work:
    """Example-steps of the solves that early exit can shorten: computed, and of a full run."""

    def __init__(self):
        self.computed = self.budget = 0

    def add(self, computed: int, budget: int) -> None:
        self.computed += computed
        self.budget += budget


def dynamics_window(cfg: dict) -> int:
    """The steps over which a period must hold: 16, or what a short budget leaves."""
    return min(CYCLE_WINDOW, cfg["max_iters"] + 1 - cfg["cycle_max_period"])


def _alignment(model, x, z_first, correct, cfg, spec, split, tol, work: Work) -> dict:
    """AA on the first ``aa_examples`` of the split, from the states the sweep reached after
    ``aa_iters`` iterations, with their correctness there (the config keeps aa_iters <= max_iters)."""
    n = min(cfg["aa_examples"], len(x))
    xs, iters = x[:n], cfg["aa_iters"]
    g = generator(spec["paper"], spec["task"], "aa", spec["seed"], split)
    per_example, computed = alignment_from_first(model.step, xs, z_first[:n], iters, g, tol, cfg["batch_size"])
    work.add(computed, n * iters)
    # The all-pairs variant keeps its own first solve on its b examples: a GEMM's rounding depends on
    # the batch below ~7 rows (measured: matrix inversion's MLP), and b² restarts dwarf b first steps.
    b = min(cfg["aa_pairs_batch"], n)
    z_pairs, first = iterate_to_budget(model.step, xs[:b], model.initial_state(xs[:b]), iters, tol)
    pairs, computed = all_pairs_from_first(model.step, xs[:b], z_pairs, iters, tol, cfg["batch_size"])
    work.add(first + computed, (b + b * b) * iters)
    return {
        "aa": per_example.mean().item(),
        "aa_all_pairs": pairs.mean().item(),
        "aa_per_example": per_example.tolist(),
        "correct_at_aa_iters": correct[iters - 1, :n].tolist(),
    }


def _dynamics(sweep, cfg, window: int) -> dict:
    """Where the AA examples' trajectories end up (fixed point, limit cycle, still moving) and
    their residual trace: the material of fig_convergence_traces, read off the sweep."""
    n = min(cfg["aa_examples"], sweep.correct.shape[1])
    classification = classify_tail(sweep.tail[:, :n], tol=cfg["cycle_tol"], max_period=cfg["cycle_max_period"],
                                   window=window)
    kinds, periods = classification.kind, classification.period
    return {
        "dynamics": {name: int((kinds == code).sum()) for code, name in KIND_NAMES.items()},
        "cycle_periods": sorted({int(p) for p, k in zip(periods, kinds) if KIND_NAMES[int(k)] == "cycle"}),
        "residual_traces": sweep.residual[:, : min(TRACES_KEPT, n)].T.tolist(),
    }


def _attack(model, task, x, y, cfg, spec, tol) -> dict:
    """The adversarial-initial-state stress test (table1) on the first ``attack_examples``
    in-distribution examples: starts chosen to pull the state away from the zero-init one (reached
    on the attacked batch itself, like the all-pairs variant's first solve)."""
    n = min(cfg["attack_examples"], len(x))
    xs, ys = x[:n], y[:n]
    result = adversarial_init_attack(
        model.step, model.readout, xs, cfg["aa_iters"], generator(spec["paper"], spec["task"], "attack", spec["seed"]),
        objective="alignment", targets=ys, correct=task.correct, attack_steps=cfg["attack_steps"],
        lr=cfg["attack_lr"], init_std=spec["intervention_params"]["init_std"], zeros=model.initial_state(xs),
        tol=tol,
    )
    return {"n_examples": len(xs), **result.summary()}
