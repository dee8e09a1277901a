"""How hard is each edge-copy graph size for the trained models? The evidence behind the config's
``edge_copy.data.harder_nodes``.

For every trained edge-copy checkpoint of a scale, draw fresh graphs of each node count (a seeded
generator apart from the pipeline's), run the model's trajectory once (``sweep.trajectory_sweep``, what
the evaluation reads) and print the accuracy at the training budget, at --max-iters and the best over
the iterations. A size is a usable harder split when the models are off the floor at the training
budget's end or reach it with more iterations; it asserts nothing.

    python benchmarks/probe_edge_copy_sizes.py --sizes 10 11 12 13 15
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from implicit_repro.checkpoint import load_checkpoint  # noqa: E402
from implicit_repro.data import edge_copy  # noqa: E402
from implicit_repro.sweep import trajectory_sweep  # noqa: E402
from implicit_repro.train import job_task, trained_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints/anil2022/edge_copy")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 11, 12, 13, 15])
    parser.add_argument("--graphs", type=int, default=200, help="graphs per size")
    parser.add_argument("--max-iters", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(args.seed)
    graphs = {n: edge_copy.generate(n, n, args.graphs, g) for n in args.sizes}
    print("| run | " + " | ".join(f"{n} nodes: budget → {args.max_iters} (best)" for n in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    for path in sorted(args.checkpoints.glob("*/*/seed*/model.pt")):
        ckpt = load_checkpoint(path)
        if ckpt["status"] != "ok":
            continue
        spec = ckpt["spec"]
        model = trained_model(spec, ckpt, path)
        budget, cells = spec["train"]["iters"], []
        for data in graphs.values():
            with torch.no_grad():
                sweep = trajectory_sweep(model, job_task(spec), data["inputs"], data["targets"], args.max_iters)
            acc = sweep.correct.float().mean(1)
            cells.append(f"{acc[budget - 1]:.2f} → {acc[-1]:.2f} ({acc.max():.2f})")
        run = f"{spec['intervention']} seed {spec['seed']}"
        print(f"| {run} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
