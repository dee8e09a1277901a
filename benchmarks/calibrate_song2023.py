"""Choose song2023's learning rate per variant on the validation split, from a small set.

For each variant of the WT-vs-DEQ study and each learning rate of --lrs, train the study's run (its
config at --scale, everything but the learning rate as configured, the DEQs with their unrolled
warm-up) on --seeds, exactly as the pipeline would: on the training part without its validation
tail (`song2023.data.validation_fraction`). Measure the validation accuracy on that tail (never the
test part) and, for the DEQs, the fraction of validation solves that reached the tolerance. The test
accuracy the evaluation also computes is neither printed nor written.

It prints one Markdown row per (variant, learning rate) and writes them to
benchmarks/calibration/song2023.tsv (replacing it). The chosen rate per variant (highest mean
validation accuracy; ties to the larger rate, the cheaper to train) goes to
`song2023.train.lr_by_variant` in config/config.yaml by hand. It asserts nothing.

    python benchmarks/calibrate_song2023.py                       # lrs 0.01 0.003 0.001, seeds 0 1
    python benchmarks/calibrate_song2023.py --lrs 0.03 --append
    python benchmarks/calibrate_song2023.py --variants deq_ift deq_phantom --lrs 0.01 --set deq.tol=0.01 --append
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from implicit_repro import config  # noqa: E402
from implicit_repro.numerics import cpu_model  # noqa: E402

OUT = ROOT / "benchmarks/calibration/song2023.tsv"
COLUMNS = ["variant", "lr", "settings", "seeds", "val_acc_mean", "val_acc_min", "val_solves_at_tol", "diverged", "cpu_s"]


def _section(scale: str, lr: float, settings: tuple[str, ...] = ()) -> dict:
    """The song2023 section at ``scale`` with learning rate ``lr`` and ``settings`` (``key.path=JSON``)."""
    overrides: dict = {}
    for item in settings:
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = overrides
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = json.loads(value)
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                      {"scale": scale, "overrides": {"song2023": overrides}})
    section = copy.deepcopy(cfg["song2023"])
    section["train"]["lr"] = lr
    section["train"].pop("lr_by_variant", None)
    return section


def _one(args: tuple) -> dict:
    """Train and validate one run; returns its validation accuracy, solver reach and CPU seconds."""
    scale, lr, variant, seed, settings = args
    import torch

    torch.set_num_threads(1)
    from implicit_repro.data.store import save_dataset
    from implicit_repro.evaluation import EvalJob, evaluate
    from implicit_repro.papers.song2023 import data as song_data
    from implicit_repro.papers.song2023 import grid
    from implicit_repro.seeding import generator
    from implicit_repro.train import TrainJob, train

    section = _section(scale, lr, settings)
    study = section["studies"]["wt_vs_deq"]
    depth = section["deq"]["max_iter"] if variant in grid.DEQ else study["depth"]
    run = next(r for r in grid.runs(section) if r.run == grid.run_id(variant, depth, study["width"], 1.0)
               and r.seed == seed and r.task == grid.vision_task(section))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {}
        for path, d in grid.datasets(section).items():
            if path == run.train_data:  # validation is the training file's tail: no test data is written
                files[path] = folder / "train.pt"
                save_dataset(files[path], song_data.generate(d.task, d.params, generator("song2023", d.task, "data",
                                                                                       d.split)), {})
        spec = copy.deepcopy(run.eval_spec)
        spec["splits"] = [[name, str(files[path])] for name, path in spec["splits"] if name == "validation"]
        started = time.process_time()
        train(TrainJob(spec, files[run.train_data], folder / "model.pt", folder / "log.jsonl"))
        cpu = time.process_time() - started
        evaluate(EvalJob(spec, folder / "model.pt", folder / "metrics.json", folder / "log.jsonl"))
        metrics = json.loads((folder / "metrics.json").read_text())
    return {"variant": variant, "lr": lr, "seed": seed, "settings": " ".join(settings), "val": metrics["val_accuracy"],
            "reached": metrics["val_solves_reaching_tol"], "status": metrics["status"], "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.003, 0.001])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", help="default: the WT-vs-DEQ study's")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                        help="config values of the song2023 section, e.g. deq.tol=0.01")
    parser.add_argument("--append", action="store_true", help="add the rows to the table instead of replacing it")
    args = parser.parse_args()
    variants = args.variants or _section(args.scale, args.lrs[0])["studies"]["wt_vs_deq"]["variants"]
    work = [(args.scale, lr, v, s, tuple(args.set)) for v in variants for lr in args.lrs for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_one, work))
    rows = []
    for v in variants:
        for lr in args.lrs:
            got = [r for r in results if r["variant"] == v and r["lr"] == lr]
            vals = [r["val"] for r in got if r["val"] is not None]
            reached = [r["reached"] for r in got if r["reached"] is not None]
            rows.append({
                "variant": v, "lr": lr, "settings": " ".join(args.set) or "as configured",
                "seeds": " ".join(str(r["seed"]) for r in got),
                "val_acc_mean": f"{statistics.mean(vals):.4f}" if vals else "",
                "val_acc_min": f"{min(vals):.4f}" if vals else "",
                "val_solves_at_tol": f"{statistics.mean(reached):.3f}" if reached else "",
                "diverged": sum(r["status"] != "ok" for r in got), "cpu_s": f"{sum(r['cpu_s'] for r in got):.0f}",
            })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    append = args.append and OUT.exists()
    with OUT.open("a" if append else "w", newline="") as f:
        if not append:
            f.write(f"# scale: {args.scale}; cpu: {cpu_model()}; {time.strftime('%Y-%m-%d')}\n")
        writer = csv.DictWriter(f, COLUMNS, delimiter="\t")
        if not append:
            writer.writeheader()
        writer.writerows(rows)
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
