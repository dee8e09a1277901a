"""What anil2022's evaluation costs, side by side on the trained models of a scale: the current code
with early exit as configured, the current code with early exit off, and (optionally) the code of an
earlier git revision. The current code evaluates the seeds of one design point together, as the pipeline
does (`batches.py`: `--models-per-job`, by default the scale's `resources.evaluate.models_per_job`), so
a job pays Python's and torch's start once; the revision's code, which takes one model per process,
evaluates each model in a fresh `python -m implicit_repro evaluate` process of one thread. The variants
alternate job by job, so that the machine's drift hits them alike. It prints, per task, the CPU seconds
of each variant, their ratios, the share of example-steps early exit computed, whether the metrics files
agree with the early-exit-off variant's and, with --baseline-rev, whether the revision's equal the
current code's without early exit (with it, under --skip-no-early-exit; the `early_exit` and `numerics`
records aside). It asserts nothing.

    snakemake --cores 2 train_all                      # the trained models of `small` (or of --scale)
    python benchmarks/evaluation_cost.py                # current code, early exit on and off
    python benchmarks/evaluation_cost.py --baseline-rev adfb46b   # and the code of that revision
    python benchmarks/evaluation_cost.py --baseline-rev adfb46b --models-per-job 1 --skip-no-early-exit

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
from implicit_repro.batches import batches  # noqa: E402
from implicit_repro.papers import part  # noqa: E402


def run_job(src: Path, models: list[tuple[dict, str, str, Path]]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one evaluation process running the code under ``src`` on
    ``models``: (spec, checkpoint, training log, metrics file) each."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {"PYTHONPATH": str(src), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "implicit_repro", "evaluate", "--threads", "1"]
    for spec, model, train_log, out in models:
        cmd += ["--spec", json.dumps(spec), "--model", model, "--train-log", train_log, "--out", str(out)]
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
    parser.add_argument("--models-per-job", type=int,
                        help="models per process of the current code (default: the scale's "
                             "resources.evaluate.models_per_job); the revision's code runs one")
    parser.add_argument("--tasks", nargs="*", help="only these tasks (default: every task of the scale)")
    parser.add_argument("--skip-no-early-exit", action="store_true",
                        help="leave out the early-exit-off variant (half the time when it is not the question)")
    args = parser.parse_args()
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                      {"scale": args.scale})
    runs = [r.configured(cfg["numerics"], cfg["device"]) for r in part("anil2022", "grid").runs(cfg["anil2022"])]
    runs = [r for r in runs if (ROOT / r.path("checkpoints", "model.pt")).exists()
            and (not args.tasks or r.task in args.tasks)]
    if args.max_per_kind:
        per_kind: dict = defaultdict(list)
        for r in runs:
            per_kind[(r.task, r.run)].append(r)
        runs = [r for kind in per_kind.values() for r in kind[: args.max_per_kind]]
    if not runs:
        sys.exit(f"no trained anil2022 model of scale {args.scale}: run `snakemake --cores 2 --config "
                 f"scale={args.scale} train_all` first")
    per_job = args.models_per_job or cfg["resources"]["evaluate"]["models_per_job"]
    eval_jobs = batches(runs, "evaluate", per_job)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        variants = {"early exit": ROOT / "src"}
        if not args.skip_no_early_exit:
            variants["no early exit"] = ROOT / "src"
        if args.baseline_rev:
            variants[args.baseline_rev] = worktree(args.baseline_rev, tmp / "baseline")
        cpu: dict = defaultdict(lambda: defaultdict(float))
        wall: dict = defaultdict(lambda: defaultdict(float))
        steps: dict = defaultdict(lambda: [0, 0])
        differ: dict = defaultdict(set)
        jobs: dict = defaultdict(int)
        moved: set = set()
        print(f"CPU: {numerics.cpu_model()}; scale {args.scale}; {len(runs)} anil2022 models in {len(eval_jobs)} "
              f"jobs of the current code ({per_job} models per job at most); variants: {', '.join(variants)}"
              f"{' (one model per job)' if args.baseline_rev else ''}", flush=True)
        reference_name = "no early exit" if "no early exit" in variants else "early exit"
        for b, batch in enumerate(eval_jobs):
            outs: dict = defaultdict(list)
            for v, (name, src) in enumerate(variants.items()):
                models = []
                for k, run in enumerate(batch.runs):
                    spec = run.eval_job
                    if name == "no early exit":
                        spec = {**spec, "eval": {**spec["eval"], "early_exit_tol": None}}
                    outs[name].append(tmp / f"{b}-{k}-{v}.json")
                    models.append((spec, *(str(ROOT / run.path("checkpoints", n))
                                           for n in ("model.pt", "train_log.jsonl")), outs[name][-1]))
                jobs_of_variant = [models] if name != args.baseline_rev else [[m] for m in models]
                for job in jobs_of_variant:
                    c, w = run_job(src, job)
                    cpu[batch.runs[0].task][name] += c
                    wall[batch.runs[0].task][name] += w
            for k, run in enumerate(batch.runs):
                jobs[run.task] += 1
                record = json.loads(outs["early exit"][k].read_text()).get("early_exit") or {}
                steps[run.task][0] += record.get("example_steps", 0)
                steps[run.task][1] += record.get("of", 0)
                reference = comparable(outs[reference_name][k])
                for name in variants:
                    if name != reference_name and comparable(outs[name][k]) != reference:
                        differ[run.task].add(name)
                if args.baseline_rev and reference != comparable(outs[args.baseline_rev][k]):
                    moved.add(run.task)  # the revision against the current code without early exit, if run
        names = list(variants)
        others = names[1:]  # each as a ratio to the current code with early exit
        print(f"\n| task | models | {' | '.join(f'{n} (CPU s)' for n in names)} |"
              f"{''.join(f' {n} / early exit |' for n in others)} example-steps computed | metrics equal |"
              f"{f' equal to {names[-1]} |' if args.baseline_rev else ''}")
        print("|---|---|" + "---|" * (len(names) + len(others) + 2 + bool(args.baseline_rev)))
        totals: dict = defaultdict(float)
        for task in cpu:
            for n in names:
                totals[n] += cpu[task][n]
            row = [task, str(jobs[task]), *(f"{cpu[task][n]:.1f}" for n in names),
                   *(f"{cpu[task][n] / cpu[task]['early exit']:.2f}x" for n in others)]
            done, of = steps[task]
            row += [f"{done / of:.0%}" if of else "n/a",
                    "yes" if not differ[task] else f"no ({', '.join(sorted(differ[task]))} differ)"]
            if args.baseline_rev:
                row.append("no" if task in moved else "yes")
            print("| " + " | ".join(row) + " |")
        row = ["all", str(sum(jobs.values())), *(f"{totals[n]:.1f}" for n in names),
               *(f"{totals[n] / totals['early exit']:.2f}x" for n in others)]
        done, of = (sum(v[i] for v in steps.values()) for i in (0, 1))
        print("| " + " | ".join(row + [f"{done / of:.0%}" if of else "n/a", ""] + [""] * bool(args.baseline_rev)) + " |")
        if args.baseline_rev:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "baseline")], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
