"""The compute plan of a scale, before submitting it: per paper and rule, the jobs, estimated CPU- and
GPU-hours and peak memory, and the total.

    python -m implicit_repro plan --scale paper            # timings measured at `small`, in logs/

Training and evaluation jobs are estimated from the benchmark files Snakemake wrote for a measured
scale (``logs/benchmark/<rule>/<run key>-<id>.tsv``): seconds per unit of work, the work of a job coming from
its paper's model of it (``papers/<paper>/grid.py: work``), matched on the most specific of (paper,
task, variant or intervention), (paper, variant or intervention), (paper); the matching measured
jobs' seconds over their work, both summed, times the target job's work. Data and report jobs are counted with the
median seconds of their measured rule (they generate or aggregate; they do not train). GPU-hours are
CPU-hours divided by ``--gpu-speedup``, an assumption until calibrated on a GPU. Peak memory: the
measured peak RSS of the matching jobs plus 8 bytes per activation unit beyond theirs (fp32 values
and their gradients). Every assumption is printed with the plan.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from implicit_repro.papers import part

SCALED = ("train", "evaluate")
BYTES_PER_ACTIVATION = 8  # fp32 value + its gradient


@dataclass(frozen=True)
class Job:
    rule: str
    paper: str
    key: str  # the stem of the job's benchmark file (paper/task/run/seed<k>-<id>), or the output's path
    match: tuple[tuple, ...]  # most specific first: the keys a measured rate may come from
    work: float
    activations: float


def jobs(cfg: dict, papers: list[str]) -> list[Job]:
    """Every data, train, evaluate and report job of the config's DAG, paper by paper."""
    out = []
    for paper in papers:
        grid, section = part(paper, "grid"), cfg[paper]
        for path in sorted(grid.datasets(section)):
            out.append(Job("data", paper, path, ((paper,),), 1.0, 0.0))
        for run in grid.runs(section):
            w = grid.work(section, run)
            run = run.configured(cfg["numerics"], cfg["device"])  # part of the identity, so of the file names
            kind = run.run.split("/")[0]  # the intervention or the variant
            match = ((paper, run.task, kind), (paper, kind), (paper,))
            for rule in SCALED:
                out.append(Job(rule, paper, run.stem(rule), match, w[rule],
                               w["activations"] if rule == "train" else 0.0))
    return out


@dataclass(frozen=True)
class Measured:
    seconds: float
    max_rss_mb: float


def read_benchmark(path: Path) -> Measured | None:
    """The last row of a Snakemake benchmark file (seconds, peak RSS in MB), or None if absent."""
    if not path.exists():
        return None
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        return None
    return Measured(float(rows[-1]["s"]), float(rows[-1]["max_rss"]) if rows[-1]["max_rss"] != "-" else 0.0)


def benchmark_path(logs: Path, job: Job) -> Path:
    return logs / "benchmark" / job.rule / f"{job.key}.tsv"


@dataclass
class Rates:
    """Seconds per unit of work (train, evaluate) or per job (data, report), and peak memory, of
    the measured jobs, pooled at every level of the match keys."""

    per_work: dict
    per_job: dict
    memory: dict  # key -> (median peak RSS in MB, median activations)


def measure(measured_jobs: list[Job], logs: Path) -> Rates:
    per_work, per_job, memory = {}, {}, {}
    for job in measured_jobs:
        m = read_benchmark(benchmark_path(logs, job))
        if m is None:
            continue
        for key in job.match:
            k = (job.rule, *key)
            per_work.setdefault(k, []).append((m.seconds, job.work))
            memory.setdefault(k, []).append((m.max_rss_mb, job.activations))
    # Report and data rules: median seconds per job, from every benchmark file of the rule.
    for rule in ("data", "report"):
        for path in (logs / "benchmark" / rule).rglob("*.tsv"):
            m = read_benchmark(path)
            if m is not None:
                per_job.setdefault(rule, []).append((m.seconds, m.max_rss_mb))
    # Seconds over work summed over the matching jobs: a plan of the measured scale itself gives back
    # the measured total of every (paper, task, kind).
    return Rates({k: sum(s for s, _ in v) / sum(w for _, w in v) for k, v in per_work.items()},
                 {k: (statistics.median(s for s, _ in v), max(r for _, r in v)) for k, v in per_job.items()},
                 {k: (statistics.median(r for r, _ in v), statistics.median(a for _, a in v))
                  for k, v in memory.items()})


def gpu_rules(cfg: dict) -> tuple[str, ...]:
    """The rules whose jobs ask for a GPU at this scale (config ``resources.<rule>.gpu``)."""
    return tuple(rule for rule, res in cfg["resources"].items() if res.get("gpu", 0) > 0)


def estimate(target: list[Job], rates: Rates, n_report_jobs: dict[str, int], gpu_speedup: float,
             on_gpu: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per (paper, rule): jobs, CPU-hours, GPU-hours, peak memory (MB) and how many jobs had no rate.
    The jobs of the ``on_gpu`` rules run ``gpu_speedup`` times faster, on a GPU."""
    rows = []
    for job in target:
        key = next(((job.rule, *k) for k in job.match if (job.rule, *k) in rates.per_work), None)
        if job.rule == "data":
            seconds, peak = rates.per_job.get("data", (float("nan"), float("nan")))
        elif key is None:
            seconds, peak = float("nan"), float("nan")
        else:
            seconds = rates.per_work[key] * job.work
            rss, activations = rates.memory[key]
            peak = rss + max(0.0, job.activations - activations) * BYTES_PER_ACTIVATION / 2**20
        rows.append({"paper": job.paper, "rule": job.rule, "seconds": seconds, "peak_mb": peak})
    for paper, n in n_report_jobs.items():
        seconds, peak = rates.per_job.get("report", (float("nan"), float("nan")))
        rows += [{"paper": paper, "rule": "report", "seconds": seconds, "peak_mb": peak}] * n
    frame = pd.DataFrame(rows, columns=["paper", "rule", "seconds", "peak_mb"])
    out = frame.groupby(["paper", "rule"], sort=False).agg(
        jobs=("seconds", "size"), unestimated=("seconds", lambda s: int(s.isna().sum())),
        cpu_hours=("seconds", lambda s: s.sum() / 3600), peak_mb=("peak_mb", "max")).reset_index()
    out["gpu_hours"] = [h / gpu_speedup if r in on_gpu else 0.0 for r, h in zip(out["rule"], out["cpu_hours"])]
    out.loc[out["rule"].isin(on_gpu), "cpu_hours"] = 0.0  # those run on the GPU
    return out[["paper", "rule", "jobs", "cpu_hours", "gpu_hours", "peak_mb", "unestimated"]]


def render(plan: pd.DataFrame, scale: str, measured_scale: str, gpu_speedup: float, cpu_model: str,
           on_gpu: tuple[str, ...] = ()) -> str:
    total = plan[["jobs", "cpu_hours", "gpu_hours", "unestimated"]].sum()
    lines = [f"Compute plan for scale '{scale}' (timings measured at '{measured_scale}' on {cpu_model}, "
             "one thread per job)", "",
             f"{'paper':10s} {'rule':9s} {'jobs':>6s} {'CPU-hours':>11s} {'GPU-hours':>11s} {'peak MB':>9s}"]
    for r in plan.itertuples():
        missing = f"  ({r.unestimated} without a measured rate)" if r.unestimated else ""
        lines.append(f"{r.paper:10s} {r.rule:9s} {r.jobs:6d} {r.cpu_hours:11.1f} {r.gpu_hours:11.1f} "
                     f"{r.peak_mb:9.0f}{missing}")
    lines += [f"{'total':10s} {'':9s} {int(total['jobs']):6d} {total['cpu_hours']:11.1f} {total['gpu_hours']:11.1f}",
              "", "Assumptions:",
              "- train and evaluate: measured seconds per unit of work × each job's work (papers/<paper>/grid.py: "
              "work), matched on (paper, task, variant or intervention), else (paper, variant or intervention), "
              "else (paper);",
              (f"- GPU-hours = the CPU-hours of the {', '.join(on_gpu)} jobs (they ask for a GPU at this scale) / "
               f"{gpu_speedup:g} (--gpu-speedup: an assumption, not a measurement on a GPU); the other jobs run on "
               "CPUs;") if on_gpu else "- no rule asks for a GPU at this scale: every job runs on CPUs;",
              "- data and report jobs: the median seconds of their measured rule, unscaled;",
              f"- peak memory: the matching jobs' measured peak RSS + {BYTES_PER_ACTIVATION} bytes per activation "
              "unit beyond theirs; CPU-hours are single-thread hours on the measuring machine."]
    return "\n".join(lines)
