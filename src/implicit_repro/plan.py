"""The compute plan of a scale, before submitting it: per paper and rule, the jobs, estimated CPU- and
GPU-hours and peak memory, and the total.

    python -m implicit_repro plan --scale paper                 # timings of `small`: logs/, else shipped
    python -m implicit_repro plan --scale small --measured-scale smoke

Timings. Every job ends its log with its own CPU seconds (user + system, ``cli.CPU_LINE``): at the
start of its command (Python, torch and the package loaded), on its work (``cpu.work``: the training
epochs, the evaluation) and in all. CPU seconds do not grow when more jobs run than there are cores,
as wall seconds do (``--cores 8`` on 2 cores: about 4×), and unlike Snakemake's sampled ``cpu_time``
they miss no tail of the job. They come from a measured scale: this checkout's logs
(``logs/<rule>/<run key>-<id>.log``, beside Snakemake's benchmark files for wall time and peak memory)
where they exist, else the reference timings shipped in ``benchmarks/timings/<scale>.tsv`` (one row
per job with its work, headed by the CPU model that ran them; ``python -m implicit_repro plan --record
--measured-scale S`` writes them from logs/).

The model. A training or evaluation job costs a fixed part (all but its work: starting up, building
the model, loading and saving; the median over the rule's measured jobs) plus a rate per unit of its
work (its paper's model of it, ``papers/<paper>/grid.py: work``, in the batched steps of ``work.py``):

    seconds = fixed[rule] + rate[rule, key] × work

``rate`` is the measured jobs' work seconds over their work, both summed, matched on the most
specific of (paper, task, variant or intervention), (paper, variant or intervention), (paper).
Scaling a whole job's seconds by the work ratio, as a single rate does, scales the fixed part too: it
put a 2-core hour at 20,000 CPU-hours. Data and report jobs count the median CPU seconds of their
measured rule. On a GPU (a rule whose ``resources.<rule>.gpu`` > 0) the work runs ``--gpu-speedup``
times faster (an assumption until calibrated on a GPU; it applies to the work's per-step overhead
too, a negligible share at paper sizes) and the fixed part does not. Peak memory: the
matching jobs' measured peak RSS plus 8 bytes per activation unit beyond theirs (fp32 values and
their gradients). Every assumption is printed with the plan.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from implicit_repro.batches import STAGES, batches
from implicit_repro.errors import ReproError
from implicit_repro.papers import part

SCALED = ("train", "evaluate")
BYTES_PER_ACTIVATION = 8  # fp32 value + its gradient
REFERENCE = Path("benchmarks/timings")


@dataclass(frozen=True)
class Job:
    rule: str
    paper: str
    key: str  # the stem of the job's benchmark file (paper/task/run/seed<k>-<id>, batches.py), or the output's path
    match: tuple[tuple, ...]  # most specific first: the keys a measured rate may come from
    work: float
    activations: float
    runs: tuple[str, ...] = ()  # the stems of the runs whose outputs the job writes (train, evaluate)


def jobs(cfg: dict, papers: list[str]) -> list[Job]:
    """Every data, train and evaluate job of the config's DAG, paper by paper."""
    out = []
    for paper in papers:
        grid, section = part(paper, "grid"), cfg[paper]
        for path in sorted(grid.datasets(section)):
            out.append(Job("data", paper, path.removeprefix("data/").rsplit(".", 1)[0], ((paper,),), 1.0, 0.0))
        work, configured = {}, []
        for run in grid.runs(section):
            run_work = grid.work(section, run)
            run = run.configured(cfg["numerics"], cfg["device"])  # part of the identity, so of the file names
            configured.append(run)
            work[run.stem("train")] = run_work
        for stage in STAGES:
            for batch in batches(configured, stage, cfg["resources"][stage]["models_per_job"]):
                # a batch's models run one after another: work adds up, the peak is its largest model's
                members = [work[r.stem("train")] for r in batch.runs]
                activations = max(w["activations"] for w in members) if stage == "train" else 0.0
                out.append(Job(stage, paper, batch.stem, _match(batch.runs[0]), sum(w[stage] for w in members),
                               activations, tuple(r.stem(stage) for r in batch.runs)))
    return out


def _match(run) -> tuple[tuple, ...]:
    kind = run.run.split("/")[0]  # the intervention or the variant
    return (run.paper, run.task, kind), (run.paper, kind), (run.paper,)


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
    work_s: float  # CPU seconds of the job's work (training epochs, the evaluation); NaN if not logged
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


def read_cpu_line(log: Path) -> dict[str, float] | None:
    """{"start-up", "work", "total"} CPU seconds from the last ``cli.CPU_LINE`` of a job's log, or None."""
    from implicit_repro.cli import CPU_LINE

    if not log.exists():
        return None
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(CPU_LINE)]
    if not lines:
        return None
    return {name: float(value) for name, value in (p.strip().split(" ") for p in lines[-1][len(CPU_LINE):].split(","))}


def timings_from_logs(measured_jobs: list[Job], logs: Path, scale: str) -> list[Timing]:
    """The measured jobs' timings from this checkout's logs and benchmark files (report jobs: those
    of ``scale``). A job whose log has no CPU line (written before logs had one) counts Snakemake's
    sampled ``cpu_time``, else its wall time, and no work seconds."""
    found = [(job.rule, job.paper, "/".join(job.match[0]), job.work, job.activations, benchmark_path(logs, job))
             for job in measured_jobs]
    found += [("report", p.parent.name, p.parent.name, 1.0, 0.0, p)
              for p in sorted((logs / "benchmark" / "report" / scale).glob("*/*.tsv"))]
    out = []
    for rule, paper, match, work, activations, bench in found:
        row = read_benchmark(bench)
        if row is None:
            continue
        log = logs / bench.relative_to(logs / "benchmark").with_suffix(".log")
        wall, sampled = _number(row, "s"), _number(row, "cpu_time")
        logged = read_cpu_line(log) or {"total": sampled if math.isfinite(sampled) else wall}
        rss = _number(row, "max_rss")
        out.append(Timing(rule, paper, match, work, activations, logged["total"], logged.get("work", float("nan")),
                          wall, rss if math.isfinite(rss) else 0.0))
    return out


def uncovered(measured_jobs: list[Job], timings: list[Timing]) -> set[tuple[str, str]]:
    """(rule, most specific match key) of the measured training and evaluation jobs that no timing
    covers: kinds of job this checkout has not run yet, or ran under other names (one model per job,
    before training was batched)."""
    covered = {(t.rule, t.match) for t in timings}
    return {(j.rule, "/".join(j.match[0])) for j in measured_jobs if j.rule in SCALED} - covered


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
    """The timings and ``about`` lines of a reference file; one of another layout or work model is an
    error naming the file and how to re-record it."""
    from implicit_repro.work import VERSION

    lines = path.read_text().splitlines()
    about = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# "))
    body = [line for line in lines if not line.startswith("#")]
    names = [f.name for f in fields(Timing)]
    if not body or body[0].split("\t") != names or about.get("work_model") != str(VERSION):
        raise ReproError(f"{path}: reference timings of another layout or work model (work_model "
                         f"{about.get('work_model', '?')}, this code's {VERSION}). Re-record them after a run of that "
                         f"scale: `python -m implicit_repro plan --record --measured-scale {about.get('scale', '<scale>')}`.")
    kinds = {f.name: f.type for f in fields(Timing)}
    timings = [Timing(**{k: (v if kinds[k] == "str" else float(v)) for k, v in row.items()})
               for row in csv.DictReader(body, delimiter="\t")]
    return timings, about


# ---------------------------------------------------------------- the cost model

@dataclass
class CostModel:
    """seconds = fixed[rule] + rate[(rule, *match key)] × work for train and evaluate; a median per
    job for data and report; peak memory per match key."""

    fixed: dict  # rule -> median CPU seconds of its jobs beyond their work
    rate: dict
    per_job: dict  # rule -> (median seconds, max peak RSS)
    memory: dict  # (rule, *key) -> (median peak RSS in MB, median activations)

    def seconds(self, job: Job) -> tuple[float, float, float]:
        """(fixed part, work part, peak MB) of ``job``; NaN where nothing was measured."""
        if job.rule not in SCALED:
            seconds, peak = self.per_job.get(job.rule, (float("nan"), float("nan")))
            return seconds, 0.0, peak
        key = next(((job.rule, *k) for k in job.match if (job.rule, *k) in self.rate), None)
        if key is None:
            return float("nan"), float("nan"), float("nan")
        rss, activations = self.memory[key]
        peak = rss + max(0.0, job.activations - activations) * BYTES_PER_ACTIVATION / 2**20
        return self.fixed[job.rule], self.rate[key] * job.work, peak


def fit(timings: list[Timing]) -> CostModel:
    fixed, per_work, memory, per_job = {}, {}, {}, {}
    for rule in SCALED:
        mine = [t for t in timings if t.rule == rule]
        if not mine:
            continue
        measured = [t.cpu_s - t.work_s for t in mine if math.isfinite(t.work_s)]
        # Without work seconds (logs of an older run): the cheapest tenth of the jobs, nearly all fixed cost.
        fixed[rule] = statistics.median(measured) if measured else \
            statistics.quantiles([t.cpu_s for t in mine], n=10)[0] if len(mine) > 1 else 0.0
        for t in mine:
            seconds = t.work_s if math.isfinite(t.work_s) else max(t.cpu_s - fixed[rule], 0.0)
            for key in t.as_job().match:
                per_work.setdefault((rule, *key), []).append((seconds, t.work))
                memory.setdefault((rule, *key), []).append((t.max_rss_mb, t.activations))
    for rule in ("data", "report"):
        mine = [t for t in timings if t.rule == rule]
        if mine:
            per_job[rule] = (statistics.median(t.cpu_s for t in mine), max(t.max_rss_mb for t in mine))
    rate = {k: sum(s for s, _ in v) / sum(w for _, w in v) for k, v in per_work.items() if sum(w for _, w in v) > 0}
    return CostModel(fixed, rate, per_job,
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
              f"- train and evaluate: CPU seconds = the measured fixed part of a job ({fixed}: starting Python and "
              "torch, building, loading, saving) + a measured rate × its work (papers/<paper>/grid.py: work, in the "
              "batched steps of work.py), the rate matched on (paper, task, variant or intervention), else (paper, "
              "variant or intervention), else (paper);",
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
        for stem in job.runs:
            path = results / stem / "metrics.json"
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
