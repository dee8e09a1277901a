"""What anil2022's evaluation costs, side by side on the trained models of a scale: the current code
with early exit as configured, the current code with early exit off, and (optionally) the code of an
earlier git revision, each model in a fresh `python -m implicit_repro evaluate` process of one thread, as
the one-model `evaluate` rule runs it (a scale with `resources.evaluate.models_per_job` > 1 runs several
models per process and pays the start-up once per job: `benchmarks/stage_times.py` shows the stage), the variants alternating job by job so that
the machine's drift hits them alike. It prints, per task, the CPU seconds of each variant, their
ratios, the share of example-steps early exit computed, whether the metrics files agree with the early-exit-off
variant's and, with --baseline-rev, whether the current code's equal the revision's (the `early_exit` and
`numerics` records aside). It asserts nothing.

    snakemake --cores 2 train_all                      # the trained models of `small` (or of --scale)
    python benchmarks/evaluation_cost.py                # current code, early exit on and off
    python benchmarks/evaluation_cost.py --baseline-rev adfb46b   # and the code of that revision

CPU seconds are the child processes' user + system time (resource.getrusage), which does not grow
with the load of other processes as wall time does; report them with the CPU model printed first.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from implicit_repro import config, numerics  # noqa: E402
from implicit_repro.papers import part  # noqa: E402


def run_job(src: Path, spec: dict, model: str, train_log: str, out: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one evaluation process running the code under ``src``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {"PYTHONPATH": str(src), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "implicit_repro", "evaluate", "--spec", json.dumps(spec), "--model", model,
           "--train-log", train_log, "--out", str(out), "--threads", "1"]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def comparable(path: Path) -> dict:
    """A metrics file without the records that differ by design between the variants."""
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("early_exit", "numerics")}


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(where), rev], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return where / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--baseline-rev", help="also run the evaluation code of this git revision")
    parser.add_argument("--max-per-kind", type=int, default=0,
                        help="evaluate at most this many seeds per (task, intervention, gradient); 0: all")
    args = parser.parse_args()
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                      {"scale": args.scale})
    runs = [r.configured(cfg["numerics"], cfg["device"]) for r in part("anil2022", "grid").runs(cfg["anil2022"])]
    runs = [r for r in runs if (ROOT / r.path("checkpoints", "model.pt")).exists()]
    if args.max_per_kind:
        per_kind: dict = defaultdict(list)
        for r in runs:
            per_kind[(r.task, r.run)].append(r)
        runs = [r for kind in per_kind.values() for r in kind[: args.max_per_kind]]
    if not runs:
        sys.exit(f"no trained anil2022 model of scale {args.scale}: run `snakemake --cores 2 --config "
                 f"scale={args.scale} train_all` first")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        variants = {"early exit": ROOT / "src", "no early exit": ROOT / "src"}
        if args.baseline_rev:
            variants[args.baseline_rev] = worktree(args.baseline_rev, tmp / "baseline")
        cpu: dict = defaultdict(lambda: defaultdict(float))
        wall: dict = defaultdict(lambda: defaultdict(float))
        steps: dict = defaultdict(lambda: [0, 0])
        differ: dict = defaultdict(set)
        jobs: dict = defaultdict(int)
        moved: set = set()
        print(f"CPU: {numerics.cpu_model()}; scale {args.scale}; {len(runs)} anil2022 evaluation jobs; variants: "
              f"{', '.join(variants)}", flush=True)
        for k, run in enumerate(runs):
            spec = run.eval_job
            model, log = (str(ROOT / run.path("checkpoints", n)) for n in ("model.pt", "train_log.jsonl"))
            outs = {}
            for name, src in variants.items():
                job_spec = spec if name != "no early exit" else {**spec, "eval": {**spec["eval"], "early_exit_tol": None}}
                outs[name] = tmp / f"{k}-{len(outs)}.json"
                c, w = run_job(src, job_spec, model, log, outs[name])
                cpu[run.task][name] += c
                wall[run.task][name] += w
            jobs[run.task] += 1
            record = json.loads(outs["early exit"].read_text()).get("early_exit") or {}
            steps[run.task][0] += record.get("example_steps", 0)
            steps[run.task][1] += record.get("of", 0)
            reference = comparable(outs["no early exit"])
            for name, out in outs.items():
                if comparable(out) != reference:
                    differ[run.task].add(name)
            if args.baseline_rev and comparable(outs["early exit"]) != comparable(outs[args.baseline_rev]):
                moved.add(run.task)  # the two revisions' code, both with early exit as configured
        names = list(variants)
        print(f"\n| task | jobs | {' | '.join(f'{n} (CPU s)' for n in names)} | no early exit / early exit |"
              f"{f' {names[-1]} / early exit |' if args.baseline_rev else ''} example-steps computed | metrics equal |"
              f"{f' equal to {names[-1]} |' if args.baseline_rev else ''}")
        print("|---|---|" + "---|" * (len(names) + 3 + 2 * bool(args.baseline_rev)))
        totals: dict = defaultdict(float)
        for task in cpu:
            for n in names:
                totals[n] += cpu[task][n]
            row = [task, str(jobs[task]), *(f"{cpu[task][n]:.1f}" for n in names),
                   f"{cpu[task]['no early exit'] / cpu[task]['early exit']:.2f}x"]
            if args.baseline_rev:
                row.append(f"{cpu[task][names[-1]] / cpu[task]['early exit']:.2f}x")
            done, of = steps[task]
            row += [f"{done / of:.0%}" if of else "n/a",
                    "yes" if not differ[task] else f"no ({', '.join(sorted(differ[task]))} differ)"]
            if args.baseline_rev:
                row.append("no" if task in moved else "yes")
            print("| " + " | ".join(row) + " |")
        row = ["all", str(sum(jobs.values())), *(f"{totals[n]:.1f}" for n in names),
               f"{totals['no early exit'] / totals['early exit']:.2f}x"]
        if args.baseline_rev:
            row.append(f"{totals[names[-1]] / totals['early exit']:.2f}x")
        done, of = (sum(v[i] for v in steps.values()) for i in (0, 1))
        print("| " + " | ".join(row + [f"{done / of:.0%}" if of else "n/a", ""] + [""] * bool(args.baseline_rev)) + " |")
        if args.baseline_rev:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "baseline")], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
