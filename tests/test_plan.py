"""The compute plan on benchmark files whose timings are known: every measured job took exactly
RATE seconds per unit of its work, so every estimate has a known answer."""

import pytest

from conftest import ROOT
from implicit_repro import config, plan
from implicit_repro.papers import known

RATE = 2e-6  # seconds per unit of work
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def cfg(scale, **overrides):
    return config.load(ROOT / "config/config.yaml", SCHEMA, {"scale": scale, "overrides": overrides})


def write_logs(logs, jobs, report_seconds=3.0):
    for job in jobs:
        path = plan.benchmark_path(logs, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        seconds = RATE * job.work if job.rule in plan.SCALED else 1.5
        rss = 100 + job.activations * plan.BYTES_PER_ACTIVATION / 2**20
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:01\t{rss}\n")
    for k in range(3):
        path = logs / "benchmark/report/x" / f"item{k}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{report_seconds}\t0:00:03\t50\n")


@pytest.mark.parametrize("scale", ["smoke", "small", "paper"])
def test_the_plan_scales_measured_seconds_by_work(tmp_path, scale):
    papers = known()
    write_logs(tmp_path, plan.jobs(cfg("smoke"), papers))
    rates = plan.measure(plan.jobs(cfg("smoke"), papers), tmp_path)
    target = plan.jobs(cfg(scale), papers)
    table = plan.estimate(target, rates, {p: 2 for p in papers}, gpu_speedup=10.0).set_index(["paper", "rule"])
    for paper in papers:
        for rule in plan.SCALED:
            mine = [j for j in target if j.paper == paper and j.rule == rule]
            row = table.loc[(paper, rule)]
            assert row["jobs"] == len(mine) and row["unestimated"] == 0
            assert row["cpu_hours"] == pytest.approx(RATE * sum(j.work for j in mine) / 3600)
            assert row["gpu_hours"] == 0.0  # no rule is on a GPU unless named
        assert table.loc[(paper, "report"), "cpu_hours"] == pytest.approx(2 * 3.0 / 3600)
        assert table.loc[(paper, "data"), "cpu_hours"] == pytest.approx(1.5 * sum(
            1 for j in target if j.paper == paper and j.rule == "data") / 3600)


def test_gpu_rules_move_their_hours_to_the_gpu_at_the_assumed_speedup(tmp_path):
    papers = known()
    smoke = cfg("smoke")
    write_logs(tmp_path, plan.jobs(smoke, papers))
    rates = plan.measure(plan.jobs(smoke, papers), tmp_path)
    on_gpu = plan.gpu_rules(cfg("smoke", resources={"train": {"gpu": 1}}))
    assert on_gpu == ("train",) and plan.gpu_rules(smoke) == ()
    table = plan.estimate(plan.jobs(smoke, papers), rates, {}, 10.0, on_gpu).set_index(["paper", "rule"])
    for paper in papers:
        work = sum(j.work for j in plan.jobs(smoke, papers) if j.paper == paper and j.rule == "train")
        assert table.loc[(paper, "train"), "gpu_hours"] == pytest.approx(RATE * work / 3600 / 10)
        assert table.loc[(paper, "train"), "cpu_hours"] == 0.0


def test_doubling_the_epochs_doubles_the_training_estimate(tmp_path):
    smoke = cfg("smoke")
    write_logs(tmp_path, plan.jobs(smoke, ["anil2022"]))
    rates = plan.measure(plan.jobs(smoke, ["anil2022"]), tmp_path)
    epochs = smoke["anil2022"]["prefix_sums"]["train"]["epochs"]
    longer = cfg("smoke", anil2022={"prefix_sums": {"train": {"epochs": 2 * epochs}}})

    def prefix_train_hours(c):
        jobs = [j for j in plan.jobs(c, ["anil2022"]) if "prefix_sums" in j.key]
        return plan.estimate(jobs, rates, {}, 1.0).set_index("rule").loc["train", "cpu_hours"]

    assert prefix_train_hours(longer) == pytest.approx(2 * prefix_train_hours(smoke))


def test_a_kind_never_measured_falls_back_to_its_papers_rate(tmp_path):
    smoke = cfg("smoke")
    measured = [j for j in plan.jobs(smoke, ["anil2022"]) if "/baseline/" in j.key]
    write_logs(tmp_path, measured)
    rates = plan.measure(measured, tmp_path)
    others = [j for j in plan.jobs(smoke, ["anil2022"]) if "/baseline/" not in j.key and j.rule == "train"]
    assert others
    table = plan.estimate(others, rates, {}, 1.0).set_index("rule")
    assert table.loc["train", "cpu_hours"] == pytest.approx(RATE * sum(j.work for j in others) / 3600)
