"""Several models per evaluation job (batches.py, `resources.evaluate.models_per_job`): which runs go
together, how a job is named, what the plan counts, and that a model evaluated beside others gets the
metrics file it gets alone."""

import filecmp
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from test_bad_input import spec
from implicit_repro import config, plan
from implicit_repro.batches import eval_batches
from implicit_repro.data import prefix_sums
from implicit_repro.data.store import save_dataset
from implicit_repro.papers import Run, part
from implicit_repro.seeding import generator
from implicit_repro.train import TrainJob, train


def run(task, name, seed):
    return Run("p2000", task, name, seed, train_spec={"seed": seed}, eval_spec={"seed": seed})


def test_a_batch_holds_one_point_of_the_design_space_in_seed_order_at_most_models_per_job_at_a_time():
    runs = [run("a", "x", 2), run("a", "y", 0), run("a", "x", 0), run("b", "x", 1), run("a", "x", 1)]
    batches = eval_batches(runs, 2)
    assert [[(r.task, r.run, r.seed) for r in b.runs] for b in batches] == [
        [("a", "x", 0), ("a", "x", 1)], [("a", "x", 2)], [("a", "y", 0)], [("b", "x", 1)]]
    assert sorted(r.key for b in eval_batches(runs, 10) for r in b.runs) == sorted(r.key for r in runs)
    assert len(eval_batches(runs, 1)) == len(runs)
    with pytest.raises(ValueError, match="at least 1"):
        eval_batches(runs, 0)


def test_a_batch_of_one_keeps_its_runs_name_and_another_grouping_gets_another_name():
    runs = [run("a", "x/y", s) for s in range(3)]
    alone = eval_batches(runs, 1)
    assert [b.stem for b in alone] == [r.stem("evaluate") for r in runs]
    three, = eval_batches(runs, 3)
    assert three.stem.startswith("p2000/a/x/y/seeds0-2-")
    first_two = eval_batches(runs, 2)[0]
    assert first_two.stem.startswith("p2000/a/x/y/seeds0-1-") and first_two.stem != three.stem
    assert three.rule_name.startswith("evaluate_p2000_a_x_y_seeds0_2_") and three.rule_name.isidentifier()


def test_the_plan_counts_one_evaluation_job_per_batch_with_the_work_of_its_models():
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": "small"})
    per_job = cfg["resources"]["evaluate"]["models_per_job"]
    assert per_job > 1  # the laptop scale batches
    grid = part("anil2022", "grid")
    runs = grid.runs(cfg["anil2022"])
    jobs = [j for j in plan.jobs(cfg, ["anil2022"]) if j.rule == "evaluate"]
    configured = [r.configured(cfg["numerics"], cfg["device"]) for r in runs]
    assert len(jobs) == len(eval_batches(configured, per_job)) < len(runs)
    assert sorted(s for j in jobs for s in j.runs) == sorted(r.stem("evaluate") for r in configured)
    assert sum(j.work for j in jobs) == pytest.approx(sum(grid.work(cfg["anil2022"], r)["evaluate"] for r in runs))
    one = {**cfg, "resources": {**cfg["resources"], "evaluate": {**cfg["resources"]["evaluate"], "models_per_job": 1}}}
    assert len([j for j in plan.jobs(one, ["anil2022"]) if j.rule == "evaluate"]) == len(runs)


def evaluate(folder, *models):
    """One `python -m implicit_repro evaluate` process for ``models`` (s<seed>.pt of tmp_path), each
    writing <folder>/s<seed>.json."""
    args = []
    for name in models:
        args += ["--spec", json.dumps(spec(seed=int(name[1:]))), "--model", f"{name}.pt", "--out", f"{folder}/{name}.json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "implicit_repro", "evaluate", *args, "--threads", "1"],
                          cwd=folder.parent, env=env, capture_output=True, text=True)


def test_a_model_evaluated_in_a_batch_gets_the_metrics_file_it_gets_alone(tmp_path):
    """Two models of different seeds, evaluated together in both orders and each alone: four metrics
    files, byte for byte the same per model (a job that read one checkpoint for both, or whose first
    evaluation left a draw or a setting behind for the second, would differ)."""
    save_dataset(tmp_path / "bits6.pt", prefix_sums.generate(6, 64, generator("batches", 6)), {"bits": 6})
    for seed in (0, 1):
        train(TrainJob(spec(seed=seed), tmp_path / "bits6.pt", tmp_path / f"s{seed}.pt", tmp_path / f"s{seed}.jsonl"))
    for folder, models in (("together", ["s0", "s1"]), ("reversed", ["s1", "s0"]), ("alone", ["s0"]),
                           ("alone", ["s1"])):
        proc = evaluate(tmp_path / folder, *models)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("s0", "s1"):
        alone = tmp_path / "alone" / f"{name}.json"
        for folder in ("together", "reversed"):
            assert filecmp.cmp(tmp_path / folder / f"{name}.json", alone, shallow=False), (name, folder)
    assert not filecmp.cmp(tmp_path / "alone/s0.json", tmp_path / "alone/s1.json", shallow=False)


def test_evaluate_refuses_arguments_that_do_not_pair_up(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "implicit_repro", "evaluate", "--spec", "{}", "--spec", "{}",
                           "--model", "a.pt", "--out", "a.json", "--out", "b.json"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "2 --spec, 1 --model, 2 --out and 0 --train-log: give one of each per model" in proc.stderr
