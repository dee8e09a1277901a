"""Per stage and per paper: how many jobs ran and how long they took, from Snakemake's benchmark
files (logs/benchmark/<stage>/<paper>/...tsv, one per job; report/<scale>/<paper>/...tsv). Jobs are
named by their identity, so the logs of every scale run in this checkout are there side by side:
``--scale`` keeps the report jobs of one scale, and the others are the ones its config names only if
no other scale ran here (give ``--logs`` a copy of one run's logs otherwise).

    python benchmarks/stage_times.py                 # the current checkout's logs
    python benchmarks/stage_times.py --logs other/logs --cores 2

``CPU seconds`` sums the jobs' CPU time (Snakemake's ``cpu_time``: each job runs on its rule's
threads, one by default); ``/ cores`` divides that by the cores the run had, the wall time the stage
would take if the jobs packed the cores perfectly. ``wall seconds`` sums the jobs' wall-clock time,
which a run with more jobs than cores (``--cores 8`` on 2 cores) inflates: it is shown, not divided.
It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def collect(logs: Path, scale: str | None = None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(stage, paper) -> the (CPU, wall-clock) seconds of each job (CPU: wall where not recorded)."""
    seconds: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
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
            wall = float(rows[-1]["s"])
            cpu = rows[-1].get("cpu_time", "-")
            seconds[(stage, paper)].append((float(cpu) if cpu not in ("-", "", None) else wall, wall))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--scale", help="count only this scale's report jobs")
    args = parser.parse_args()
    seconds = collect(args.logs, args.scale)
    print(f"| stage | paper | jobs | CPU seconds | / {args.cores} cores (min) | mean CPU per job (s) | wall seconds |")
    print("|---|---|---|---|---|---|---|")
    for (stage, paper), values in sorted(seconds.items()):
        cpu, wall = sum(c for c, _ in values), sum(w for _, w in values)
        print(f"| {stage} | {paper} | {len(values)} | {cpu:.0f} | {cpu / args.cores / 60:.1f} | "
              f"{cpu / len(values):.1f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
