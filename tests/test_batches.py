"""Several models per training or evaluation job (batches.py, `resources.<stage>.models_per_job`):
which runs go together, how a job is named, what the plan counts, that a model trained or evaluated
beside others gets the checkpoint or metrics file it gets alone, and that a training job killed
mid-way loses no finished member."""

import filecmp
import functools
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from test_bad_input import TRAIN, spec
from implicit_repro import config, plan
from implicit_repro.batches import batches
from implicit_repro.data import prefix_sums
from implicit_repro.data.store import save_dataset
from implicit_repro.papers import Run, part
from implicit_repro.seeding import generator
from implicit_repro.train import KILL_AFTER_EPOCH_ENV, TrainJob, train


def run(task, name, seed):
    return Run("p2000", task, name, seed, train_spec={"seed": seed}, eval_spec={"seed": seed})


eval_batches = functools.partial(batches, stage="evaluate")


def test_a_batch_holds_one_point_of_the_design_space_in_seed_order_at_most_models_per_job_at_a_time():
    runs = [run("a", "x", 2), run("a", "y", 0), run("a", "x", 0), run("b", "x", 1), run("a", "x", 1)]
    two = eval_batches(runs, models_per_job=2)
    assert [[(r.task, r.run, r.seed) for r in b.runs] for b in two] == [
        [("a", "x", 0), ("a", "x", 1)], [("a", "x", 2)], [("a", "y", 0)], [("b", "x", 1)]]
    assert sorted(r.key for b in eval_batches(runs, models_per_job=10) for r in b.runs) == sorted(r.key for r in runs)
    assert len(eval_batches(runs, models_per_job=1)) == len(runs)
    with pytest.raises(ValueError, match="at least 1"):
        eval_batches(runs, models_per_job=0)
    with pytest.raises(ValueError, match="stage must be one of"):
        batches(runs, "report", 2)


def test_a_batch_of_one_keeps_its_runs_name_and_another_grouping_gets_another_name():
    runs = [Run("p2000", "a", "x/y", s, train_spec={"seed": s}, eval_spec={"seed": s, "eval": 1}) for s in range(3)]
    for stage in ("train", "evaluate"):
        alone = batches(runs, stage, 1)
        assert [b.stem for b in alone] == [r.stem(stage) for r in runs]
        three, = batches(runs, stage, 3)
        assert three.stem.startswith("p2000/a/x/y/seeds0-2-")
        first_two = batches(runs, stage, 2)[0]
        assert first_two.stem.startswith("p2000/a/x/y/seeds0-1-") and first_two.stem != three.stem
        assert three.rule_name.startswith(f"{stage}_p2000_a_x_y_seeds0_2_") and three.rule_name.isidentifier()
    # a training and an evaluation job of the same runs are named apart (their members' stems differ)
    assert batches(runs, "train", 3)[0].stem != batches(runs, "evaluate", 3)[0].stem


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_the_plan_counts_one_job_per_batch_with_the_work_of_its_models(stage):
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": "small"})
    per_job = cfg["resources"][stage]["models_per_job"]
    assert per_job > 1  # the laptop scale batches
    grid = part("anil2022", "grid")
    runs = grid.runs(cfg["anil2022"])
    jobs = [j for j in plan.jobs(cfg, ["anil2022"]) if j.rule == stage]
    configured = [r.configured(cfg["numerics"], cfg["device"]) for r in runs]
    assert len(jobs) == len(batches(configured, stage, per_job)) < len(runs)
    assert sorted(s for j in jobs for s in j.runs) == sorted(r.stem(stage) for r in configured)
    work = [grid.work(cfg["anil2022"], r) for r in runs]
    assert sum(j.work for j in jobs) == pytest.approx(sum(w[stage] for w in work))
    if stage == "train":  # one model after another: the job's peak is its largest model's, not their sum
        assert max(j.activations for j in jobs) == max(w["activations"] for w in work)
    one = {**cfg, "resources": {**cfg["resources"], stage: {**cfg["resources"][stage], "models_per_job": 1}}}
    assert len([j for j in plan.jobs(one, ["anil2022"]) if j.rule == stage]) == len(runs)


def cli(folder, command, *args, env=None):
    return subprocess.run([sys.executable, "-m", "implicit_repro", command, *args, "--threads", "1"], cwd=folder,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
                          capture_output=True, text=True)


def train_cli(folder, *members, env=None):
    """One `python -m implicit_repro train` process for ``members`` ((seed, epochs) pairs), each writing
    <folder>/s<seed>.pt and s<seed>.jsonl from ../bits6.pt."""
    folder.mkdir(exist_ok=True)
    args = []
    for seed, epochs in members:
        args += ["--spec", json.dumps(spec(seed=seed, train={**TRAIN, "epochs": epochs})), "--data", "../bits6.pt",
                 "--model-out", f"s{seed}.pt", "--log-out", f"s{seed}.jsonl"]
    return cli(folder, "train", *args, env=env)


def without_seconds(path):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()]


@pytest.fixture
def bits6(tmp_path):
    save_dataset(tmp_path / "bits6.pt", prefix_sums.generate(6, 64, generator("batches", 6)), {"bits": 6})
    return tmp_path


# Two seeds run together in both orders, and each alone: (folder, seeds of one process)
ORDERS = (("together", (0, 1)), ("reversed", (1, 0)), ("alone", (0,)), ("alone", (1,)))


def assert_each_model_as_alone(root, suffix):
    """Per seed, the file written in either batch is byte for byte the one written alone, and the two
    seeds' files differ (one model's file written for both would not)."""
    for name in ("s0", "s1"):
        alone = root / "alone" / f"{name}.{suffix}"
        for folder in ("together", "reversed"):
            assert filecmp.cmp(root / folder / f"{name}.{suffix}", alone, shallow=False), (name, folder)
    assert not filecmp.cmp(root / "alone" / f"s0.{suffix}", root / "alone" / f"s1.{suffix}", shallow=False)


def test_a_model_trained_in_a_batch_gets_the_checkpoint_it_gets_alone(bits6):
    """Two seeds trained together in both orders and each alone: per seed the same checkpoint, byte for
    byte, and the same log but its seconds (a job whose first model left a draw, a setting or its
    optimizer behind for the second would differ); no epoch checkpoint is left behind."""
    for folder, seeds in ORDERS:
        proc = train_cli(bits6 / folder, *((seed, 2) for seed in seeds))
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert_each_model_as_alone(bits6, "pt")
    for name in ("s0", "s1"):
        for folder in ("together", "reversed"):
            assert without_seconds(bits6 / folder / f"{name}.jsonl") == without_seconds(bits6 / "alone" / f"{name}.jsonl")
    assert not list(bits6.rglob("*.resume.pt"))


def test_a_training_job_killed_mid_way_writes_its_finished_members_at_once_when_rerun(bits6):
    """Seed 0 (1 epoch) is written, then the job is killed after seed 1's second epoch of 3. Snakemake
    deletes an incomplete job's outputs, so the test does too; the rerun writes seed 0 from its kept
    epoch checkpoint without training an epoch, resumes seed 1 at epoch 2, and ends with the files of
    an uninterrupted job. (A job that deleted each member's epoch checkpoint as soon as it was written
    would train seed 0 again.)"""
    members = [(0, 1), (1, 3)]
    assert train_cli(bits6 / "whole", *members).returncode == 0
    killed = bits6 / "killed"
    proc = train_cli(killed, *members, env={KILL_AFTER_EPOCH_ENV: "2"})
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL after seed 1's epoch 2: nothing cleaned up
    assert (killed / "s0.pt").exists() and (killed / "s0.resume.pt").exists() and (killed / "s1.resume.pt").exists()
    for name in ("s0.pt", "s0.jsonl"):
        (killed / name).unlink()

    proc = train_cli(killed, *members)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "s0.resume.pt at epoch 1" in proc.stderr and "s1.resume.pt at epoch 2" in proc.stderr
    assert "epoch 1/1 " not in proc.stderr and "epoch 2/3 " not in proc.stderr and "epoch 3/3 " in proc.stderr
    for name in ("s0", "s1"):
        assert filecmp.cmp(killed / f"{name}.pt", bits6 / "whole" / f"{name}.pt", shallow=False), name
        assert without_seconds(killed / f"{name}.jsonl") == without_seconds(bits6 / "whole" / f"{name}.jsonl")
    assert not list(killed.glob("*.resume.pt"))


def test_train_refuses_arguments_that_do_not_pair_up(tmp_path):
    proc = cli(tmp_path, "train", "--spec", "{}", "--spec", "{}", "--data", "d.pt", "--model-out", "a.pt",
               "--model-out", "b.pt", "--log-out", "a.jsonl", "--log-out", "b.jsonl")
    assert proc.returncode == 2
    assert "train: 2 --spec, 1 --data, 2 --model-out and 2 --log-out: give one of each per model" in proc.stderr


def evaluate(folder, *models):
    """One `python -m implicit_repro evaluate` process for ``models`` (s<seed>.pt of tmp_path), each
    writing <folder>/s<seed>.json."""
    args = []
    for name in models:
        args += ["--spec", json.dumps(spec(seed=int(name[1:]))), "--model", f"{name}.pt", "--out", f"{folder}/{name}.json"]
    return cli(folder.parent, "evaluate", *args)


def test_a_model_evaluated_in_a_batch_gets_the_metrics_file_it_gets_alone(bits6):
    """Two models of different seeds, evaluated together in both orders and each alone: four metrics
    files, byte for byte the same per model (a job that read one checkpoint for both, or whose first
    evaluation left a draw or a setting behind for the second, would differ)."""
    for seed in (0, 1):
        train(TrainJob(spec(seed=seed), bits6 / "bits6.pt", bits6 / f"s{seed}.pt", bits6 / f"s{seed}.jsonl"))
    for folder, seeds in ORDERS:
        proc = evaluate(bits6 / folder, *(f"s{seed}" for seed in seeds))
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert_each_model_as_alone(bits6, "json")


def test_evaluate_refuses_arguments_that_do_not_pair_up(tmp_path):
    proc = cli(tmp_path, "evaluate", "--spec", "{}", "--spec", "{}", "--model", "a.pt", "--out", "a.json",
               "--out", "b.json")
    assert proc.returncode == 2
    assert "2 --spec, 1 --model, 2 --out and 0 --train-log: give one of each per model" in proc.stderr
