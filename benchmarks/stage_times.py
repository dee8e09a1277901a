"""Per stage and per paper: how many jobs ran and how long they took, from Snakemake's benchmark
files (logs/benchmark/<stage>/<paper>/...tsv, one per job; report/<scale>/<paper>/...tsv). Jobs are
named by their identity, so the logs of every scale run in this checkout are there side by side:
``--scale`` keeps the report jobs of one scale, and the others are the ones its config names only if
no other scale ran here (give ``--logs`` a copy of one run's logs otherwise).

    python benchmarks/stage_times.py                 # the current checkout's logs
    python benchmarks/stage_times.py --logs other/logs --cores 2

``job seconds`` sums the jobs' wall-clock seconds (each job runs on its rule's threads, one by
default); ``/ cores`` divides that by the cores the run had, the wall time the stage would take if
the jobs packed the cores perfectly. It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def collect(logs: Path, scale: str | None = None) -> dict[tuple[str, str], list[float]]:
    """(stage, paper) -> the wall-clock seconds of each job."""
    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted((logs / "benchmark").rglob("*.tsv")):
        stage, *parts = path.relative_to(logs / "benchmark").parts
        if stage == "report":  # report/<scale>/<paper>/<item>.tsv
            if scale is not None and parts[0] != scale:
                continue
            parts = parts[1:]
        paper = parts[0]
        with open(path) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            seconds[(stage, paper)].append(float(rows[-1]["s"]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--scale", help="count only this scale's report jobs")
    args = parser.parse_args()
    seconds = collect(args.logs, args.scale)
    print(f"| stage | paper | jobs | job seconds | / {args.cores} cores (min) | mean per job (s) |")
    print("|---|---|---|---|---|---|")
    for (stage, paper), values in sorted(seconds.items()):
        total = sum(values)
        print(f"| {stage} | {paper} | {len(values)} | {total:.0f} | {total / args.cores / 60:.1f} | "
              f"{total / len(values):.1f} |")


if __name__ == "__main__":
    main()
