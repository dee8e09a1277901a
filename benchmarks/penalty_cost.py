"""What the anti-alignment penalty costs per training step, against the zero-init baseline's step, for
each anil2022 task at the `small` scale's model and batch (one thread, CPU time, the best of
``--repeats`` timings of ``--steps`` steps each, interleaved).

Three steps are timed, on the same model, inputs and targets:

- ``baseline``: the task's run from zeros, its loss, backward, Adam;
- ``penalty``: what ``train._run_epoch`` does for the anti-alignment arm: the task's run and the
  penalty's run from an N(0, I) start as one batch of both, the task loss plus the weighted cosine;
- ``two starts``: the form before stop 29, for comparison: the task's run, then a batch of two more
  runs from two random starts whose cosine is the penalty.

    python benchmarks/penalty_cost.py                 # every task, ~1 min
    python benchmarks/penalty_cost.py --tasks mazes

It prints a Markdown table (ms per step, and each penalty form's ratio to the baseline) and asserts
nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from implicit_repro import config  # noqa: E402
from implicit_repro.data.store import load_dataset  # noqa: E402
from implicit_repro.interventions import anti_alignment_penalty  # noqa: E402
from implicit_repro.papers import part  # noqa: E402
from implicit_repro.train import job_task, make_model, train_split  # noqa: E402


def step_function(form: str, model, task, x, y, iters: int, weight: float):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    zeros = torch.zeros(model.state_shape(x))

    def step() -> None:
        if form == "baseline":
            z, aux = model.solve(x, iters, zeros), 0.0
        elif form == "penalty":
            z, z_penalty = model.solve(torch.cat([x, x]), iters, torch.cat([zeros, torch.randn_like(zeros)])).chunk(2)
            aux = weight * anti_alignment_penalty(z, z_penalty)
        else:  # two starts
            z = model.solve(x, iters, zeros)
            z_a, z_b = model.solve(torch.cat([x, x]), iters, torch.randn(2 * len(x), *zeros.shape[1:])).chunk(2)
            aux = weight * anti_alignment_penalty(z_a, z_b)
        loss = task.loss(model.readout(z), y) + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=None, help="anil2022 tasks (default: those with the arm)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {})
    runs = [r for r in part("anil2022", "grid").runs(cfg["anil2022"])
            if r.run == "anti_alignment/unrolled" and r.seed == 0 and (not args.tasks or r.task in args.tasks)]
    print("| task | batch | iterations | baseline ms/step | penalty ms/step | ratio | two starts ms/step | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    forms = ("baseline", "penalty", "two starts")
    for run in runs:
        spec = run.train_spec
        x_all, y_all = train_split(spec, load_dataset(ROOT / run.train_data))
        batch = spec["train"]["batch_size"]
        x, y = x_all[:batch], y_all[:batch]
        model, task = make_model(spec), job_task(spec)
        steps = {f: step_function(f, model, task, x, y, spec["train"]["iters"],
                                  spec["intervention_params"]["anti_alignment_weight"]) for f in forms}
        best = dict.fromkeys(forms, float("inf"))
        for _ in range(args.repeats):
            for form in forms:
                for _ in range(2):  # warm-up
                    steps[form]()
                start = time.process_time()
                for _ in range(args.steps):
                    steps[form]()
                best[form] = min(best[form], (time.process_time() - start) / args.steps * 1000)
        base = best["baseline"]
        print(f"| {run.task} | {batch} | {spec['train']['iters']} | {base:.1f} | {best['penalty']:.1f} | "
              f"{best['penalty'] / base:.2f} | {best['two starts']:.1f} | {best['two starts'] / base:.2f} |")


if __name__ == "__main__":
    main()
