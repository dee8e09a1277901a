"""Per stage and per paper: how many jobs of a scale ran and what they cost, from each job's log (its
CPU seconds, `cli.CPU_LINE`) and Snakemake's benchmark file (its wall seconds). Jobs are named by
their identity, so the logs of every scale run in this checkout lie side by side: the jobs counted
are those the config of ``--scale`` names (``plan.timings_from_logs``).

    python benchmarks/stage_times.py --scale small            # the current checkout's logs
    python benchmarks/stage_times.py --scale small --logs other/logs --cores 2

``CPU seconds`` sums the jobs' own CPU time (each job runs on its rule's threads, one by default);
``/ cores`` divides that by the cores the run had: the wall time the stage would take if the jobs
packed the cores perfectly. ``wall seconds`` sums the jobs' wall-clock time, which a run with more
jobs than cores (``--cores 8`` on 2 cores) inflates about 4×: it is shown, not divided. It prints
figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from implicit_repro import config, plan  # noqa: E402
from implicit_repro.papers import known  # noqa: E402

STAGES = {"data": "data", "train": "train", "evaluate": "evaluate", "report": "report"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, default=ROOT / "logs")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--scale", default="small", help="count the jobs of this scale's config")
    args = parser.parse_args()
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": args.scale})
    timings = plan.timings_from_logs(plan.jobs(cfg, [p for p in known() if p in cfg]), args.logs, args.scale)
    totals: dict = defaultdict(lambda: [0, 0.0, 0.0])
    for t in timings:
        row = totals[(STAGES[t.rule], t.paper)]
        row[0] += 1
        row[1] += t.cpu_s
        row[2] += t.wall_s
    print(f"| stage | paper | jobs | CPU seconds | / {args.cores} cores (min) | mean CPU per job (s) | wall seconds |")
    print("|---|---|---|---|---|---|---|")
    for (stage, paper), (n, cpu, wall) in sorted(totals.items()):
        print(f"| {stage} | {paper} | {n} | {cpu:.0f} | {cpu / args.cores / 60:.1f} | {cpu / n:.1f} | {wall:.0f} |")
    cpu = sum(v[1] for v in totals.values())
    print(f"| all | | {sum(v[0] for v in totals.values())} | {cpu:.0f} | {cpu / args.cores / 60:.1f} | | "
          f"{sum(v[2] for v in totals.values()):.0f} |")


if __name__ == "__main__":
    main()
