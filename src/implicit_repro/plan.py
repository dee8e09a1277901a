"""The compute plan of a scale, before submitting it: per paper and rule, the jobs, estimated CPU- and
GPU-hours and peak memory, and the total.

    python -m implicit_repro plan --scale paper                 # timings of `small`: logs/, else shipped
    python -m implicit_repro plan --scale small --measured-scale smoke

Timings. Every job's CPU seconds (Snakemake's benchmark ``cpu_time``: it does not grow when more jobs
run than there are cores, as wall seconds do) come from a measured scale: this checkout's benchmark
files (``logs/benchmark/<rule>/<run key>-<id>.tsv``) where they exist, else the reference timings
shipped in ``benchmarks/timings/<scale>.tsv`` (one row per job with its work, recorded with the CPU
model that ran them; ``python -m implicit_repro plan --record`` writes them from logs/).

The model. A training or evaluation job costs a fixed part (starting Python and torch, loading data
and checkpoint: the same whatever its size) plus a part proportional to its work (its paper's model of
it, ``papers/<paper>/grid.py: work``). The rule's smallest jobs (the decile of least work) fix one
point of that line: their median CPU time ``base`` at their median work ``w0``; every other job adds a
rate per unit of work beyond it:

    seconds = base[rule] + rate[rule, key] × (work − w0[rule])

``rate`` is the measured jobs' seconds beyond ``base`` over their work beyond ``w0``, both summed,
matched on the most specific of (paper, task, variant or intervention), (paper, variant or
intervention), (paper); the fixed part of a job is what remains at zero work, base − rate × w0.
Scaling a whole job's seconds by the work ratio, as a single rate does, scales the start-up cost
too: it put a 2-core hour at 20,000 CPU-hours. Data and report jobs count
the median seconds of their measured rule. On a GPU (a rule whose ``resources.<rule>.gpu`` > 0) the
work part runs ``--gpu-speedup`` times faster (an assumption until calibrated on a GPU) and the fixed
part does not. Peak memory: the matching jobs' measured peak RSS plus 8 bytes per activation unit
beyond theirs (fp32 values and their gradients). Every assumption is printed with the plan.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from implicit_repro.errors import ReproError
from implicit_repro.papers import part

SCALED = ("train", "evaluate")
BYTES_PER_ACTIVATION = 8  # fp32 value + its gradient
SMALLEST = 0.1  # the fraction of a rule's jobs (least work first) whose median CPU time is its fixed cost
REFERENCE = Path("benchmarks/timings")


@dataclass(frozen=True)
class Job:
    rule: str
    paper: str
    key: str  # the stem of the job's benchmark file (paper/task/run/seed<k>-<id>), or the output's path
    match: tuple[tuple, ...]  # most specific first: the keys a measured rate may come from
    work: float
    activations: float


def jobs(cfg: dict, papers: list[str]) -> list[Job]:
    """Every data, train and evaluate job of the config's DAG, paper by paper."""
    out = []
    for paper in papers:
        grid, section = part(paper, "grid"), cfg[paper]
        for path in sorted(grid.datasets(section)):
            out.append(Job("data", paper, path.removeprefix("data/").rsplit(".", 1)[0], ((paper,),), 1.0, 0.0))
        for run in grid.runs(section):
            w = grid.work(section, run)
            run = run.configured(cfg["numerics"], cfg["device"])  # part of the identity, so of the file names
            kind = run.run.split("/")[0]  # the intervention or the variant
            match = ((paper, run.task, kind), (paper, kind), (paper,))
            for rule in SCALED:
                out.append(Job(rule, paper, run.stem(rule), match, w[rule],
                               w["activations"] if rule == "train" else 0.0))
    return out


# ---------------------------------------------------------------- measured timings

@dataclass(frozen=True)
class Timing:
    """One measured job: what it was and what it cost."""

    rule: str
    paper: str
    match: str  # the job's most specific match key, "paper/task/kind" ("paper" for data and report)
    work: float
    activations: float
    cpu_s: float
    wall_s: float
    max_rss_mb: float

    def as_job(self) -> Job:
        """The job this timing measured, as the cost model matches it."""
        paper, *rest = self.match.split("/")
        levels = (tuple(self.match.split("/")), (paper, rest[-1]) if rest else (paper,), (paper,))
        return Job(self.rule, self.paper, self.match, tuple(dict.fromkeys(levels)), self.work, self.activations)


def read_benchmark(path: Path) -> dict | None:
    """The last row of a Snakemake benchmark file, or None if absent or empty."""
    if not path.exists():
        return None
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return rows[-1] if rows else None


def _number(row: dict, key: str) -> float:
    value = row.get(key, "-")
    return float(value) if value not in ("-", "", None) else float("nan")


def benchmark_path(logs: Path, job: Job) -> Path:
    return logs / "benchmark" / job.rule / f"{job.key}.tsv"


def timings_from_logs(measured_jobs: list[Job], logs: Path, scale: str) -> list[Timing]:
    """The measured jobs' timings from this checkout's benchmark files (report jobs: those of
    ``scale``). CPU seconds are Snakemake's ``cpu_time``; a file without it counts its wall time."""
    out = []
    for job in measured_jobs:
        row = read_benchmark(benchmark_path(logs, job))
        if row is not None:
            out.append(_timing(job.rule, job.paper, "/".join(job.match[0]), job.work, job.activations, row))
    for path in sorted((logs / "benchmark" / "report" / scale).glob("*/*.tsv")):
        row = read_benchmark(path)
        if row is not None:
            out.append(_timing("report", path.parent.name, path.parent.name, 1.0, 0.0, row))
    return out


def _timing(rule, paper, match, work, activations, row) -> Timing:
    wall, cpu = _number(row, "s"), _number(row, "cpu_time")
    return Timing(rule, paper, match, work, activations, cpu if math.isfinite(cpu) else wall, wall,
                  _number(row, "max_rss") if math.isfinite(_number(row, "max_rss")) else 0.0)


def write_reference(path: Path, timings: list[Timing], about: dict[str, str]) -> None:
    """The shipped reference timings: ``about`` (scale, CPU model, date, ...) as `# key: value`
    lines, then one tab-separated row per job."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(Timing)]
    lines = [f"# {k}: {v}" for k, v in about.items()] + ["\t".join(names)]
    lines += ["\t".join(f"{getattr(t, n):.6g}" if isinstance(getattr(t, n), float) else str(getattr(t, n))
                        for n in names) for t in timings]
    path.write_text("\n".join(lines) + "\n")


def read_reference(path: Path) -> tuple[list[Timing], dict[str, str]]:
    lines = path.read_text().splitlines()
    about = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# "))
    rows = csv.DictReader([line for line in lines if not line.startswith("#")], delimiter="\t")
    kinds = {f.name: f.type for f in fields(Timing)}
    timings = [Timing(**{k: (v if kinds[k] == "str" else float(v)) for k, v in row.items()}) for row in rows]
    return timings, about


# ---------------------------------------------------------------- the cost model

@dataclass
class CostModel:
    """seconds = base[rule] + rate[(rule, *match key)] × (work − w0[rule]) for train and evaluate; a
    median per job for data and report; peak memory per match key."""

    base: dict  # rule -> median CPU seconds of its smallest jobs
    w0: dict  # rule -> their median work
    rate: dict
    per_job: dict  # rule -> (median seconds, max peak RSS)
    memory: dict  # (rule, *key) -> (median peak RSS in MB, median activations)

    def seconds(self, job: Job) -> tuple[float, float, float]:
        """(fixed, work part, peak MB) of ``job``; NaN where nothing was measured."""
        if job.rule not in SCALED:
            seconds, peak = self.per_job.get(job.rule, (float("nan"), float("nan")))
            return seconds, 0.0, peak
        key = next(((job.rule, *k) for k in job.match if (job.rule, *k) in self.rate), None)
        if key is None:
            return float("nan"), float("nan"), float("nan")
        rss, activations = self.memory[key]
        peak = rss + max(0.0, job.activations - activations) * BYTES_PER_ACTIVATION / 2**20
        fixed = max(self.base[job.rule] - self.rate[key] * self.w0[job.rule], 0.0)
        return fixed, max(self.base[job.rule] + self.rate[key] * (job.work - self.w0[job.rule]) - fixed, 0.0), peak

    @property
    def fixed(self) -> dict:
        """rule -> the start-up cost of a job (at the rule's median rate)."""
        out = {}
        for rule in self.base:
            rates = [r for (k, *_), r in self.rate.items() if k == rule]
            out[rule] = max(self.base[rule] - statistics.median(rates) * self.w0[rule], 0.0) if rates else self.base[rule]
        return out


def fit(timings: list[Timing]) -> CostModel:
    base, w0, per_work, memory, per_job = {}, {}, {}, {}, {}
    for rule in SCALED:
        mine = sorted((t for t in timings if t.rule == rule), key=lambda t: t.work)
        if not mine:
            continue
        smallest = mine[: max(1, math.ceil(SMALLEST * len(mine)))]
        base[rule], w0[rule] = statistics.median(t.cpu_s for t in smallest), statistics.median(t.work for t in smallest)
        for t in mine:
            for key in t.as_job().match:
                per_work.setdefault((rule, *key), []).append((t.cpu_s - base[rule], t.work - w0[rule]))
                memory.setdefault((rule, *key), []).append((t.max_rss_mb, t.activations))
    for rule in ("data", "report"):
        mine = [t for t in timings if t.rule == rule]
        if mine:
            per_job[rule] = (statistics.median(t.cpu_s for t in mine), max(t.max_rss_mb for t in mine))
    # A key whose jobs are all among the smallest (no work beyond w0) gets its paper's rate instead.
    rate = {k: max(sum(s for s, _ in v) / sum(w for _, w in v), 0.0)
            for k, v in per_work.items() if sum(w for _, w in v) > 0}
    return CostModel(base, w0, rate, per_job,
                     {k: (statistics.median(r for r, _ in v), statistics.median(a for _, a in v))
                      for k, v in memory.items()})


def gpu_rules(cfg: dict) -> tuple[str, ...]:
    """The rules whose jobs ask for a GPU at this scale (config ``resources.<rule>.gpu``)."""
    return tuple(rule for rule, res in cfg["resources"].items() if res.get("gpu", 0) > 0)


def estimate(target: list[Job], model: CostModel, n_report_jobs: dict[str, int], gpu_speedup: float,
             on_gpu: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per (paper, rule): jobs, CPU-hours, GPU-hours, peak memory (MB) and how many jobs had no rate.
    The jobs of the ``on_gpu`` rules run on a GPU: their work part ``gpu_speedup`` times faster."""
    rows = []
    for job in target:
        fixed, work, peak = model.seconds(job)
        gpu = job.rule in on_gpu
        rows.append({"paper": job.paper, "rule": job.rule, "seconds": fixed + (work / gpu_speedup if gpu else work),
                     "peak_mb": peak, "gpu": gpu})
    for paper, n in n_report_jobs.items():
        seconds, peak = model.per_job.get("report", (float("nan"), float("nan")))
        rows += [{"paper": paper, "rule": "report", "seconds": seconds, "peak_mb": peak, "gpu": False}] * n
    frame = pd.DataFrame(rows, columns=["paper", "rule", "seconds", "peak_mb", "gpu"])
    out = frame.groupby(["paper", "rule"], sort=False).agg(
        jobs=("seconds", "size"), unestimated=("seconds", lambda s: int(s.isna().sum())),
        hours=("seconds", lambda s: s.sum() / 3600), peak_mb=("peak_mb", "max"), gpu=("gpu", "any")).reset_index()
    out["cpu_hours"] = [0.0 if g else h for g, h in zip(out["gpu"], out["hours"])]
    out["gpu_hours"] = [h if g else 0.0 for g, h in zip(out["gpu"], out["hours"])]
    return out[["paper", "rule", "jobs", "cpu_hours", "gpu_hours", "peak_mb", "unestimated"]]


def render(plan: pd.DataFrame, scale: str, measured_scale: str, source: str, model: CostModel,
           gpu_speedup: float, on_gpu: tuple[str, ...] = (), early_exit: str = "") -> str:
    total = plan[["jobs", "cpu_hours", "gpu_hours", "unestimated"]].sum()
    lines = [f"Compute plan for scale '{scale}' from the timings of '{measured_scale}': {source}", "",
             f"{'paper':10s} {'rule':9s} {'jobs':>6s} {'CPU-hours':>11s} {'GPU-hours':>11s} {'peak MB':>9s}"]
    for r in plan.itertuples():
        missing = f"  ({r.unestimated} without a measured rate)" if r.unestimated else ""
        lines.append(f"{r.paper:10s} {r.rule:9s} {r.jobs:6d} {r.cpu_hours:11.1f} {r.gpu_hours:11.1f} "
                     f"{r.peak_mb:9.0f}{missing}")
    fixed = ", ".join(f"{rule} {s:.1f} s" for rule, s in model.fixed.items())
    lines += [f"{'total':10s} {'':9s} {int(total['jobs']):6d} {total['cpu_hours']:11.1f} {total['gpu_hours']:11.1f}",
              "", "Assumptions:",
              f"- train and evaluate: CPU seconds = a fixed cost per job (start-up: {fixed}, from the rule's smallest "
              "measured jobs) + a measured rate × each job's work (papers/<paper>/grid.py: work), the rate matched on "
              "(paper, task, variant or intervention), else (paper, variant or intervention), else (paper);",
              (f"- the {', '.join(on_gpu)} jobs ask for a GPU at this scale: their work part runs {gpu_speedup:g}x faster "
               "there (--gpu-speedup: an assumption, not a measurement on a GPU), their fixed cost does not; the "
               "other jobs run on CPUs;") if on_gpu else "- no rule asks for a GPU at this scale: every job runs on CPUs;",
              "- data and report jobs: the median CPU seconds of their measured rule, unscaled;",
              f"- peak memory: the matching jobs' measured peak RSS + {BYTES_PER_ACTIVATION} bytes per activation "
              "unit beyond theirs; CPU-hours are single-thread hours on the measuring machine."]
    if early_exit:
        lines.append(f"- early exit at equilibrium (eval.early_exit_tol): {early_exit}")
    return "\n".join(lines)


def early_exit_summary(measured_jobs: list[Job], results: Path) -> str:
    """What early exit saved in the measured evaluations, per paper and task: the example-steps the
    solves computed, as a share of a full run's (from each metrics file's ``early_exit`` record)."""
    import json

    done: dict[tuple[str, str], list[int]] = {}
    for job in measured_jobs:
        if job.rule != "evaluate":
            continue
        path = results / job.key / "metrics.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text()).get("early_exit")
        if record and record.get("of"):
            steps = done.setdefault((job.paper, job.match[0][1]), [0, 0])
            steps[0] += record["example_steps"]
            steps[1] += record["of"]
    if not done:
        return ""
    parts = [f"{paper} {task} {computed / of:.0%}" for (paper, task), (computed, of) in sorted(done.items())]
    return ("the measured evaluations computed " + ", ".join(parts) + " of the example-steps of a full run; the "
            "rates carry that saving (at another scale, models converge as they do)")
