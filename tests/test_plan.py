"""The compute plan. On logs whose timings are known (every job took FIXED CPU seconds beyond its work
and RATE x work on it) every estimate has a known answer; on the reference timings shipped for two scales,
each predicts the other within 2x; and on a fresh clone (no logs) the plan answers from those."""

import math
import re

import pytest

from conftest import ROOT
from implicit_repro import config, plan
from implicit_repro.cli import CPU_LINE, main
from implicit_repro.errors import ReproError
from implicit_repro.papers import known

RATE = 2e-9  # CPU seconds per unit of work
FIXED = 1.5  # CPU seconds per job beyond its work (start-up, loading, saving)
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def cfg(scale, **overrides):
    return config.load(ROOT / "config/config.yaml", SCHEMA, {"scale": scale, "overrides": overrides})


def write_logs(logs, jobs, report_seconds=3.0, scale="smoke"):
    """Logs and benchmark files of ``jobs``: the log's CPU line says RATE x work on the work and FIXED
    + RATE x work in all; the benchmark's wall seconds are 4x that (a run with more jobs than cores) and its
    sampled cpu_time half, both of which the plan must not read."""
    for job in jobs:
        path = plan.benchmark_path(logs, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        cpu = FIXED + RATE * job.work if job.rule in plan.SCALED else 1.0
        rss = 100 + job.activations * plan.BYTES_PER_ACTIVATION / 2**20
        path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{4 * cpu}\t0:00:01\t{rss}\t{cpu / 2}\n")
        log = logs / path.relative_to(logs / "benchmark").with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        work = cpu - FIXED if job.rule in plan.SCALED else 0.0
        log.write_text(f"epoch 1/1 loss 0.1\n{CPU_LINE} start-up 0.7, work {work!r}, total {cpu!r}\n")
    for k in range(3):
        path = logs / f"benchmark/report/{scale}/x" / f"item{k}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{report_seconds}\t0:00:03\t50\t{report_seconds}\n")


def fitted(logs, jobs, scale="smoke"):
    return plan.fit(plan.timings_from_logs(jobs, logs, scale))


def test_the_fit_separates_the_fixed_part_from_a_rate_per_work():
    """Three kinds of job, a thousand-fold apart in work, each measured with its work seconds."""
    timings = [plan.Timing("evaluate", "p", f"p/t/{kind}", work, 0.0, FIXED + RATE * work, RATE * work, 0.0, 10.0)
               for kind, work in (("a", 1e3), ("b", 1e9), ("c", 1e12)) for _ in range(10)]
    model = plan.fit(timings)
    assert model.fixed["evaluate"] == pytest.approx(FIXED)
    for t in timings:
        fixed, work, _ = model.seconds(t.as_job())
        assert fixed + work == pytest.approx(t.cpu_s, rel=1e-5)
    # scaling whole jobs by the work ratio (one rate, no fixed cost) would put a job of 1e3 at ~0 s
    # and a job of 1e15 at 1000x the 1e12 one; the model keeps the start-up once per job
    big = plan.Job("evaluate", "p", "", (("p", "t", "c"), ("p", "c"), ("p",)), 1e15, 0.0)
    assert sum(model.seconds(big)[:2]) == pytest.approx(FIXED + RATE * 1e15, rel=1e-5)


@pytest.mark.parametrize("scale", ["smoke", "small", "paper"])
def test_the_plan_adds_a_fixed_cost_and_scales_the_rest_by_work(tmp_path, scale):
    papers = known()
    write_logs(tmp_path, plan.jobs(cfg("smoke"), papers))
    model = fitted(tmp_path, plan.jobs(cfg("smoke"), papers))
    target = plan.jobs(cfg(scale), papers)
    table = plan.estimate(target, model, {p: 2 for p in papers}, gpu_speedup=10.0).set_index(["paper", "rule"])
    for paper in papers:
        for rule in plan.SCALED:
            mine = [j for j in target if j.paper == paper and j.rule == rule]
            row = table.loc[(paper, rule)]
            assert row["jobs"] == len(mine) and row["unestimated"] == 0
            expected = sum(FIXED + RATE * j.work for j in mine) / 3600
            assert row["cpu_hours"] == pytest.approx(expected, rel=1e-5)  # the log's CPU time, not wall or sampled
            assert row["gpu_hours"] == 0.0  # no rule is on a GPU unless named
        assert table.loc[(paper, "report"), "cpu_hours"] == pytest.approx(2 * 3.0 / 3600)
        assert table.loc[(paper, "data"), "cpu_hours"] == pytest.approx(sum(
            1 for j in target if j.paper == paper and j.rule == "data") / 3600)


def test_gpu_rules_run_their_work_part_faster_and_keep_their_fixed_cost(tmp_path):
    papers = known()
    smoke = cfg("smoke")
    write_logs(tmp_path, plan.jobs(smoke, papers))
    model = fitted(tmp_path, plan.jobs(smoke, papers))
    on_gpu = plan.gpu_rules(cfg("smoke", resources={"train": {"gpu": 1}, "evaluate": {"gpu": 1}}))
    assert on_gpu == ("train", "evaluate") and plan.gpu_rules(smoke) == ()
    assert plan.gpu_rules(cfg("paper")) == ("train", "evaluate")
    table = plan.estimate(plan.jobs(smoke, papers), model, {}, 10.0, on_gpu).set_index(["paper", "rule"])
    for paper in papers:
        for rule in on_gpu:
            mine = [j for j in plan.jobs(smoke, papers) if j.paper == paper and j.rule == rule]
            expected = sum(FIXED + RATE * j.work / 10 for j in mine) / 3600
            assert table.loc[(paper, rule), "gpu_hours"] == pytest.approx(expected, rel=1e-5)
            assert table.loc[(paper, rule), "cpu_hours"] == 0.0


def test_doubling_the_epochs_doubles_the_training_work_part(tmp_path):
    smoke = cfg("smoke")
    write_logs(tmp_path, plan.jobs(smoke, ["anil2022"]))
    model = fitted(tmp_path, plan.jobs(smoke, ["anil2022"]))
    epochs = smoke["anil2022"]["prefix_sums"]["train"]["epochs"]
    longer = cfg("smoke", anil2022={"prefix_sums": {"train": {"epochs": 2 * epochs}}})

    def prefix_train_hours(c):
        jobs = [j for j in plan.jobs(c, ["anil2022"]) if "prefix_sums" in j.key and j.rule == "train"]
        return plan.estimate(jobs, model, {}, 1.0).set_index("rule").loc["train", "cpu_hours"] - len(jobs) * \
            model.fixed["train"] / 3600

    assert prefix_train_hours(longer) == pytest.approx(2 * prefix_train_hours(smoke))


def test_a_kind_never_measured_falls_back_to_its_papers_rate(tmp_path):
    smoke = cfg("smoke")
    measured = [j for j in plan.jobs(smoke, ["anil2022"]) if "/baseline/" in j.key]
    write_logs(tmp_path, measured)
    model = fitted(tmp_path, measured)
    others = [j for j in plan.jobs(smoke, ["anil2022"]) if "/baseline/" not in j.key and j.rule == "train"]
    assert others and all(not any(("train", *k) in model.rate for k in j.match[:2]) for j in others
                          if "mixed_init" in j.key)
    table = plan.estimate(others, model, {}, 1.0).set_index("rule")
    assert table.loc["train", "unestimated"] == 0


def test_reference_timings_round_trip(tmp_path):
    timings = [plan.Timing("train", "anil2022", "anil2022/mazes/baseline", 123.0, 4.0, 5.5, 1.25, 6.5, 300.0),
               plan.Timing("report", "song2023", "song2023", 1.0, 0.0, 2.0, 0.75, 2.5, 80.0)]
    from implicit_repro import work

    path = tmp_path / "t.tsv"
    about = {"scale": "small", "cpu": "Some CPU", "work_model": str(work.VERSION)}
    plan.write_reference(path, timings, about)
    assert plan.read_reference(path) == (timings, about)
    plan.write_reference(path, timings, {**about, "work_model": "0"})  # recorded in another work model's units
    with pytest.raises(ReproError, match=r"t\.tsv: reference timings of another layout or work model.*--record"):
        plan.read_reference(path)


# ---------------------------------------------------------------- the shipped reference timings

def reference(scale):
    return plan.read_reference(ROOT / plan.REFERENCE / f"{scale}.tsv")


@pytest.mark.parametrize("fitted_on, predicted", [("smoke", "small"), ("small", "smoke")])
def test_one_measured_scale_predicts_the_other_within_2x(fitted_on, predicted):
    """Real timings of two scales, recorded with the same code on one machine: the model fitted on
    one predicts the other's total CPU time per rule within a factor 2."""
    model = plan.fit(reference(fitted_on)[0])
    measured = reference(predicted)[0]
    for rule in plan.SCALED:
        mine = [t for t in measured if t.rule == rule]
        predicted_s = sum(sum(model.seconds(t.as_job())[:2]) for t in mine)
        actual = sum(t.cpu_s for t in mine)
        assert mine and 0.5 < predicted_s / actual < 2.0, (rule, predicted_s, actual)


def test_the_reference_timings_say_whose_they_are():
    for scale in ("smoke", "small"):
        timings, about = reference(scale)
        assert about["scale"] == scale and about["cpu"] not in ("", "?") and about["date"]
        assert {t.rule for t in timings} >= {"data", "train", "evaluate", "report"}
        assert all(math.isfinite(t.cpu_s) and t.cpu_s > 0 for t in timings)
        scaled = [t for t in timings if t.rule in plan.SCALED]
        assert all(0 <= t.work_s < t.cpu_s for t in scaled)  # measured in each job
        # A diverged model's evaluation does no work (its metrics say so); every other job does some.
        assert sum(t.work_s > 0 for t in scaled) >= 0.95 * len(scaled)


def test_plan_answers_on_a_fresh_clone_from_the_reference_timings(tmp_path, capsys):
    main(["plan", "--scale", "paper", "--logs", str(tmp_path / "no-logs"),
          "--config", str(ROOT / "config/config.yaml"), "--papers", str(ROOT / "config/papers.yaml")])
    out = capsys.readouterr().out
    about = reference("small")[1]
    assert "the reference timings shipped with the project" in out and about["cpu"] in out
    assert "anil2022" in out and "evaluate" in out and "GPU" in out


def test_kinds_of_job_missing_from_the_logs_are_timed_by_the_reference(tmp_path, capsys):
    """Logs of a partial run (only the baseline jobs): the plan says which kinds of job it has no
    timing for and takes theirs from the shipped reference timings, or, told to read logs only, says
    that it falls back. Before, it fitted on the partial logs without a word."""
    smoke = cfg("smoke")
    measured = [j for j in plan.jobs(smoke, ["anil2022"]) if "/baseline/" in j.key]
    write_logs(tmp_path, measured)
    timings = plan.timings_from_logs(plan.jobs(smoke, ["anil2022"]), tmp_path, "smoke")
    missing = plan.uncovered(plan.jobs(smoke, ["anil2022"]), timings)
    assert missing and all("baseline" not in key for _, key in missing)
    assert ("train", "anil2022/prefix_sums/mixed_init") in missing
    args = ["plan", "--scale", "small", "--measured-scale", "smoke", "--logs", str(tmp_path),
            "--config", str(ROOT / "config/config.yaml"), "--papers", str(ROOT / "config/papers.yaml")]
    main(args)
    out = capsys.readouterr().out
    assert re.search(r"\d+ kind\(s\) of job with no timing there \(evaluate anil2022/", out)
    assert "timed by benchmarks/timings/smoke.tsv" in out
    main(args + ["--timings", "logs"])
    out = capsys.readouterr().out
    assert "no timing there" in out and "nearest measured kind" in out and "timed by" not in out
