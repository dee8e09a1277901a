"""How many test-time iterations does a task's trained model need to reach equilibrium? The evidence
behind an ``eval.max_iters`` (the budget at which "converged" is judged).

For every trained model of a task (the grid of --scale, checkpoints as the pipeline wrote them), run
the zero-init trajectory once on the first --examples of each evaluation split (``sweep.trajectory_sweep``,
what the evaluation reads) to --max-iters, and print at each budget of --at the median relative residual
and the accuracy, then how many models the converged criterion (``claims.CONVERGED_RESIDUAL``) accepts
at each budget. It asserts nothing.

    python benchmarks/probe_budgets.py --task mazes --max-iters 128 --at 48 96 128
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from implicit_repro import config  # noqa: E402
from implicit_repro.checkpoint import load_checkpoint  # noqa: E402
from implicit_repro.data.store import load_dataset  # noqa: E402
from implicit_repro.papers import part  # noqa: E402
from implicit_repro.papers.anil2022.claims import CONVERGED_RESIDUAL  # noqa: E402
from implicit_repro.papers.anil2022.evaluate import IN_DISTRIBUTION, split_examples  # noqa: E402
from implicit_repro.sweep import trajectory_sweep  # noqa: E402
from implicit_repro.train import job_task, trained_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--max-iters", type=int, default=128)
    parser.add_argument("--at", nargs="+", type=int, default=[48, 96, 128])
    parser.add_argument("--examples", type=int, default=50, help="per split")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": args.scale})
    runs = [r.configured(cfg["numerics"], cfg["device"]) for r in part("anil2022", "grid").runs(cfg["anil2022"])
            if r.task == args.task]
    converged = {k: 0 for k in args.at}
    models, datasets = 0, {}
    print("| run | split | " + " | ".join(f"{k}: residual / accuracy" for k in args.at) + " |")
    print("|---|---|" + "---|" * len(args.at))
    for run in runs:
        path = ROOT / run.path("checkpoints", "model.pt")
        if not path.exists():
            continue
        ckpt = load_checkpoint(path)
        if ckpt["status"] != "ok":
            continue
        spec = run.eval_job
        model = trained_model(spec, ckpt, path)
        models += 1
        for split, data_path in spec["splits"]:
            if data_path not in datasets:  # every model of the task reads the same splits
                datasets[data_path] = load_dataset(ROOT / data_path)
            x, y = (t[: args.examples] for t in split_examples(spec, split, datasets[data_path]))
            with torch.no_grad():
                sweep = trajectory_sweep(model, job_task(spec), x, y, args.max_iters)
            residual, accuracy = sweep.residual.median(1).values, sweep.correct.float().mean(1)
            cells = [f"{residual[k - 1]:.1e} / {accuracy[k - 1]:.2f}" for k in args.at]
            print(f"| {run.run} seed {run.seed} | {split} | " + " | ".join(cells) + " |", flush=True)
            if split == IN_DISTRIBUTION:
                for k in args.at:  # a NaN residual (an overflowed state) compares False: not converged
                    converged[k] += bool(residual[k - 1] <= CONVERGED_RESIDUAL)
    print(f"\nconverged in-distribution (median residual <= {CONVERGED_RESIDUAL:g}) of {models} models: "
          + ", ".join(f"{converged[k]} at {k}" for k in args.at))


if __name__ == "__main__":
    main()
