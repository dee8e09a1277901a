"""What training the seeds of a design point in one process saves, side by side: for each chosen point
of a scale's grid, its seeds trained by one `python -m implicit_repro train` process (as the pipeline's
batched jobs do, `batches.py`) and by one process per seed (as `models_per_job: 1` does), alternating
point by point so that the machine's drift hits both alike. It prints the CPU seconds of each, their
ratio, the seconds saved per process not started, and whether every checkpoint is byte-identical
between the two. It asserts nothing. It needs the scale's datasets (`snakemake --cores 2 data`).

    python benchmarks/training_batches.py                          # a few cheap points of `small`
    python benchmarks/training_batches.py --points 'song2023/digits/wt/' --max-points 3

CPU seconds are the child processes' user + system time (resource.getrusage); report them with the
CPU model printed first.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from implicit_repro import config, numerics  # noqa: E402
from implicit_repro.batches import batches  # noqa: E402
from implicit_repro.papers import known, part  # noqa: E402


def train_process(runs, folder: Path) -> float:
    """CPU seconds of one training process for ``runs``, writing <folder>/<seed>.pt and .jsonl."""
    cmd = [sys.executable, "-m", "implicit_repro", "train", "--threads", "1"]
    for r in runs:
        cmd += ["--spec", json.dumps(r.train_job), "--data", r.train_data, "--model-out", str(folder / f"{r.seed}.pt"),
                "--log-out", str(folder / f"{r.seed}.jsonl")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="small")
    p.add_argument("--points", default=r"^(song2023/digits/(wt|untied)/L[12]_|anil2022/matrix_inversion/baseline/)",
                   help="a regular expression a point's <paper>/<task>/<run>/ must match")
    p.add_argument("--max-points", type=int, default=4)
    args = p.parse_args()
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": args.scale})
    runs = [r.configured(cfg["numerics"], cfg["device"]) for paper in known() if paper in cfg
            for r in part(paper, "grid").runs(cfg[paper])]
    points = [b for b in batches(runs, "train", 10**6)
              if re.search(args.points, f"{b.runs[0].paper}/{b.runs[0].task}/{b.runs[0].run}/") and len(b.runs) > 1]
    points = points[:args.max_points]
    missing = sorted({r.train_data for b in points for r in b.runs if not (ROOT / r.train_data).exists()})
    if missing:
        sys.exit(f"{missing[0]}: missing; run `snakemake --cores 2 --config scale={args.scale} data` first")
    print(f"CPU: {numerics.cpu_model()}; scale {args.scale}; {len(points)} points, "
          f"{sum(len(b.runs) for b in points)} models")
    print("| point | models | one process (CPU s) | one per model (CPU s) | ratio | saved per process (s) | identical |")
    print("|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        for k, batch in enumerate(points):
            together, alone = Path(tmp, f"{k}-together"), Path(tmp, f"{k}-alone")
            together.mkdir(), alone.mkdir()
            t = train_process(batch.runs, together)
            a = sum(train_process([r], alone) for r in batch.runs)
            same = all(filecmp.cmp(together / f"{r.seed}.pt", alone / f"{r.seed}.pt", shallow=False)
                       for r in batch.runs)
            n = len(batch.runs)
            totals = [totals[0] + t, totals[1] + a, totals[2] + n - 1]
            first = batch.runs[0]
            print(f"| {first.paper}/{first.task}/{first.run} | {n} | {t:.1f} | {a:.1f} | {a / t:.2f}× | "
                  f"{(a - t) / (n - 1):.2f} | {'yes' if same else 'NO'} |")
    print(f"| all | | {totals[0]:.1f} | {totals[1]:.1f} | {totals[1] / totals[0]:.2f}× | "
          f"{(totals[1] - totals[0]) / totals[2]:.2f} | |")


if __name__ == "__main__":
    main()
