"""Calibrate an anil2022 task's training recipe on a validation split carved from its training data.

For each recipe of a grid (any keys of the task's `train`, `model` or `intervention_params`, as
`section.key=v1;v2`, JSON values), train the task's runs for the given interventions and seeds on the first
(1 - --val) of the training part of the training split, and measure on the last --val of that part
(never the test part or the harder splits):

- accuracy at the training budget of iterations (what "learned" reads, threshold 0.9),
- the median relative residual at --max-iters iterations (what "converged" reads),
- the median AA score (Algorithm 1 at --max-iters, first --aa-examples validation examples), what a
  path-independence intervention is meant to move,
- training CPU seconds.

It prints one Markdown row per recipe and writes them to benchmarks/calibration/<task>.tsv (append).
It asserts nothing; the recipes chosen from it go to config/config.yaml by hand, with the row they
come from.

    python benchmarks/calibrate.py --task prefix_sums --grid "train.epochs=10;30" "train.lr=0.002;0.005"
    python benchmarks/calibrate.py --task mazes --interventions baseline mixed_init --seeds 0 1 --grid "model.width=16;24"
"""

from __future__ import annotations

import argparse
import copy
import csv
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from implicit_repro import config  # noqa: E402
from implicit_repro.data.store import load_dataset, save_dataset  # noqa: E402
from implicit_repro.path_independence import asymptotic_alignment  # noqa: E402
from implicit_repro.sweep import trajectory_sweep  # noqa: E402
from implicit_repro.papers import part  # noqa: E402
from implicit_repro.train import TrainJob, job_task, train, trained_model  # noqa: E402
from implicit_repro.checkpoint import load_checkpoint  # noqa: E402
from implicit_repro.seeding import generator  # noqa: E402
from implicit_repro.papers.anil2022.claims import CONVERGED_RESIDUAL, LEARNED_ACCURACY  # noqa: E402



def parse_grid(items: list[str]) -> list[dict]:
    """["train.lr=0.002;0.005", ...] -> every combination as {("train", "lr"): 0.002, ...} (values are JSON)."""
    axes = []
    for item in items:
        key, values = item.split("=", 1)
        axes.append([(tuple(key.split(".")), json.loads(v)) for v in values.split(";")])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def with_recipe(section: dict, task: str, recipe: dict) -> dict:
    out = copy.deepcopy(section)
    for path, value in recipe.items():
        node = out[task]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return out


@torch.no_grad()
def validate(spec: dict, model_path: Path, x: torch.Tensor, y: torch.Tensor, max_iters: int,
             aa_examples: int) -> tuple[float, float, float]:
    """(accuracy at the training budget, median relative residual at max_iters, mean AA of the first
    ``aa_examples``) on (x, y); NaNs for a diverged model."""
    ckpt = load_checkpoint(model_path)
    if ckpt["status"] != "ok":
        return float("nan"), float("nan"), float("nan")
    model = trained_model(spec, ckpt, model_path)
    sweep = trajectory_sweep(model, job_task(spec), x, y, max_iters)  # what the evaluation reads, in one pass
    xa = x[:aa_examples]
    aa = asymptotic_alignment(model.step, xa, model.initial_state(xa), max_iters,
                              generator("calibrate", "aa")).mean().item()
    return sweep.correct[spec["train"]["iters"] - 1].float().mean().item(), sweep.residual[-1].median().item(), aa


def widen(table: Path, columns: list[str]) -> None:
    """Give a table written before a column existed that column, empty in its old rows."""
    with open(table, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if rows and rows[0] != columns and rows[0] == columns[:len(rows[0])]:
        with open(table, "w", newline="") as fh:
            csv.writer(fh, delimiter="\t").writerows(
                [columns] + [row + [""] * (len(columns) - len(row)) for row in rows[1:]])


def median_residual(residuals: list[float]) -> float:
    """The median, a NaN (an overflowed state: not converged) counting as the largest."""
    return statistics.median([math.inf if math.isnan(r) else r for r in residuals])


def training_split(grid, section: dict, task: str, run, tmp: Path) -> dict:
    """The run's training split: the pipeline's file if it was generated, else drawn here exactly as
    the data rule draws it (a recipe that changes ``data`` needs no pipeline run first)."""
    path = ROOT / run.train_data
    if path.exists():
        return load_dataset(path)
    drawn = tmp / Path(run.train_data).name
    if not drawn.exists():
        dataset = grid.datasets(section)[run.train_data]  # split names may hold a dash (blur0.5-1.0)
        tensors = part("anil2022", "data").generate(task, dataset.params,
                                                    generator("anil2022", task, "data", dataset.split))
        save_dataset(drawn, tensors, {})
    return load_dataset(drawn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--interventions", nargs="*", help="default: the task's configured interventions")
    parser.add_argument("--seeds", nargs="*", type=int, default=[100, 101], help="seeds apart from the pipeline's")
    parser.add_argument("--val", type=float, default=0.2, help="fraction of the training part held out")
    parser.add_argument("--max-iters", type=int, help="iterations for the residual (default: eval.max_iters)")
    parser.add_argument("--aa-examples", type=int, default=100, help="validation examples AA is measured on")
    parser.add_argument("--grid", nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/calibration")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": args.scale})
    grid = part("anil2022", "grid")
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / f"{args.task}.tsv"
    new_file = not table.exists()
    columns = ["task", "recipe", "intervention", "seeds", "learned", "val_acc_median", "val_acc_min",
               "residual_median", "converged", "cpu_s_per_model", "aa_median"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns), flush=True)
    if not new_file:
        widen(table, columns)
    with tempfile.TemporaryDirectory() as tmp, open(table, "a", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        if new_file:
            writer.writerow(columns)
        for recipe in parse_grid(args.grid):
            section = with_recipe({args.task: cfg["anil2022"][args.task]}, args.task, recipe)
            t = section[args.task]
            max_iters = args.max_iters or t["eval"]["max_iters"]
            for intervention in args.interventions or t["interventions"]:
                results = []
                for seed in args.seeds:
                    run = grid._run(section, args.task, intervention, t["train"]["gradient"], seed)
                    spec = copy.deepcopy(run.train_spec)
                    data = training_split(grid, section, args.task, run, Path(tmp))
                    n_train = int(len(data["inputs"]) * spec["data"]["train_fraction"])
                    part_path = Path(tmp) / f"train-{seed}.pt"  # the training part only: validation is carved from it
                    save_dataset(part_path, {"inputs": data["inputs"][:n_train], "targets": data["targets"][:n_train]}, {})
                    spec["data"]["train_fraction"] = 1 - args.val
                    job = TrainJob(spec, part_path, Path(tmp) / f"m{seed}.pt", Path(tmp) / f"m{seed}.jsonl")
                    start = time.process_time()
                    train(job)
                    seconds = time.process_time() - start
                    task = job_task(spec)
                    held = int(n_train * (1 - args.val))
                    x, y = task.model_input(data["inputs"][held:n_train]), task.target(data["targets"][held:n_train])
                    results.append((*validate(spec, job.model_path, x, y, max_iters, args.aa_examples), seconds))
                accs = [a for a, *_ in results]
                residuals = [r for _, r, *_ in results]
                aas = [aa for *_, aa, _ in results if math.isfinite(aa)]
                named = {".".join(k): v for k, v in recipe.items()}
                if args.max_iters:  # the budget the residual was read at, when not the configured one
                    named["eval.max_iters"] = max_iters
                row = [args.task, json.dumps(named), intervention,
                       " ".join(map(str, args.seeds)), f"{sum(a >= LEARNED_ACCURACY for a in accs)}/{len(accs)}",
                       f"{statistics.median(accs):.3f}", f"{min(accs):.3f}",
                       f"{median_residual(residuals):.2e}",
                       f"{sum(r <= CONVERGED_RESIDUAL for r in residuals)}/{len(accs)}",
                       f"{sum(s for *_, s in results) / len(results):.1f}",
                       f"{statistics.median(aas):.3f}" if aas else "nan"]
                writer.writerow(row)
                fh.flush()
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
