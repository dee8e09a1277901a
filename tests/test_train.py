import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from implicit_repro.checkpoint import load_checkpoint
from implicit_repro.data import prefix_sums
from implicit_repro.data.store import load_dataset, save_dataset
from implicit_repro.errors import CheckpointError, DatasetError
from implicit_repro.evaluation import EvalJob, evaluate
from implicit_repro.seeding import generator
from implicit_repro.train import KILL_AFTER_EPOCH_ENV, TrainJob, train


@pytest.fixture
def data(tmp_path):
    paths = {}
    for bits in (8, 10):
        paths[bits] = tmp_path / f"bits{bits}.pt"
        save_dataset(paths[bits], prefix_sums.generate(bits, 256, generator("test", bits)), {"bits": bits})
    return paths


def make_spec(data, intervention="mixed_init", **train_overrides):
    return {
        "paper": "anil2022", "task": "prefix_sums", "intervention": intervention, "seed": 3,
        "data": {"train_fraction": 0.8},
        "model": {"width": 8, "blocks": 1},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.003, "weight_decay": 0.0, "warmup_epochs": 1,
                  "lr_milestones": [2], "lr_gamma": 0.5, "grad_clip": 1.0, "iters": 4, "blowup_loss": 100.0,
                  "gradient": "unrolled", "solver": "fixed_point", "tol": 1e-3, "phantom_steps": 3,
                  "phantom_damping": 0.5, **train_overrides},
        "intervention_params": {"init_std": 1.0, "mixed_init_prob": 0.5, "budget_min": 2, "budget_max": 6},
        "eval": {"max_iters": 8, "n_examples": 50, "batch_size": 20, "aa_iters": 8, "aa_examples": 16,
                 "aa_pairs_batch": 4, "attack_examples": 4, "attack_steps": 2, "attack_lr": 0.1,
                 "cycle_max_period": 2, "cycle_tol": 1e-3},
        "splits": [["in_distribution", str(data[8])], ["bits10", str(data[10])]],
    }


def job(spec, data, folder):
    return TrainJob(spec, data[8], folder / "model.pt", folder / "train_log.jsonl")


def train_and_evaluate(spec, data, folder):
    train(job(spec, data, folder))
    evaluate(EvalJob(spec, folder / "model.pt", folder / "metrics.json"))
    return (folder / "model.pt").read_bytes(), (folder / "metrics.json").read_bytes()


def test_same_spec_gives_identical_checkpoint_and_metrics(data, tmp_path):
    spec = make_spec(data)
    first = train_and_evaluate(spec, data, tmp_path / "a")
    second = train_and_evaluate(spec, data, tmp_path / "b")
    assert first == second
    metrics = json.loads(first[1])
    assert metrics["status"] == "ok"
    assert metrics["split_order"] == ["in_distribution", "bits10"]
    assert len(metrics["splits"]["bits10"]["accuracy"]) == 8
    other_seed = train_and_evaluate({**spec, "seed": 4}, data, tmp_path / "c")
    assert other_seed[0] != first[0]


@pytest.mark.parametrize("gradient, solver", [("ift", "anderson"), ("phantom", "broyden"), ("jfb", "fixed_point")])
def test_deq_gradients_train_and_record_solver_work(data, tmp_path, gradient, solver):
    spec = make_spec(data, "baseline", gradient=gradient, solver=solver, iters=6, epochs=2)
    result = train(job(spec, data, tmp_path))
    assert result["status"] == "ok"
    assert all(1 <= r["mean_iters"] <= 6 for r in result["history"])  # solver evaluations, capped
    metrics = evaluate(EvalJob(spec, tmp_path / "model.pt", tmp_path / "metrics.json"))
    assert metrics["gradient"] == gradient
    split = metrics["splits"]["in_distribution"]
    assert sum(split["dynamics"].values()) == 16 and len(split["residual_traces"]) == 8
    assert split["attack"]["n_examples"] == 4 and 0 <= split["attack"]["accuracy_after"] <= 1


def test_training_learns_something(data, tmp_path):
    spec = make_spec(data, epochs=4)
    train(job(spec, data, tmp_path))
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2, 3]
    assert log[-1]["loss"] < log[0]["loss"]


def test_kill_and_resume_equals_uninterrupted_run(data, tmp_path):
    spec = make_spec(data, "mixed_init_random_budget")
    reference = tmp_path / "reference"
    train(job(spec, data, reference))

    killed = tmp_path / "killed"
    # Same thread count as the reference run: results are bit-identical only for the same threads.
    script = (
        "import json, sys, torch; from pathlib import Path; from implicit_repro.train import TrainJob, train; "
        f"torch.set_num_threads({torch.get_num_threads()}); "
        "spec = json.loads(sys.argv[1]); d = Path(sys.argv[3]); "
        "train(TrainJob(spec, Path(sys.argv[2]), d / 'model.pt', d / 'train_log.jsonl'))"
    )
    args = [sys.executable, "-c", script, json.dumps(spec), str(data[8]), str(killed)]
    env = {"PYTHONPATH": str(ROOT / "src"), KILL_AFTER_EPOCH_ENV: "2"}
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr  # SIGKILL: nothing got to clean up
    assert not (killed / "model.pt").exists()
    resume = killed / "model.resume.pt"
    assert load_checkpoint(resume, ("epoch",))["epoch"] == 2

    proc = subprocess.run(args[:-1] + [str(killed)], env={"PYTHONPATH": str(ROOT / "src")},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr and "at epoch 2" in proc.stderr
    resumed, uninterrupted = load_checkpoint(killed / "model.pt"), load_checkpoint(reference / "model.pt")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name  # bit-identical weights
    assert {k: v for k, v in resumed.items() if k != "model"} == {k: v for k, v in uninterrupted.items() if k != "model"}
    assert not resume.exists()
    for folder in (reference, killed):
        evaluate(EvalJob(spec, folder / "model.pt", folder / "metrics.json"))
    assert (killed / "metrics.json").read_bytes() == (reference / "metrics.json").read_bytes()
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "seconds"}  # noqa: E731
                       for l in p.read_text().splitlines()]
    assert strip(killed / "train_log.jsonl") == strip(reference / "train_log.jsonl")


def test_diverged_run_is_recorded_and_evaluation_goes_on(data, tmp_path):
    spec = make_spec(data, blowup_loss=1e-6)
    result = train(job(spec, data, tmp_path))
    assert result["status"] == "diverged"
    assert load_checkpoint(tmp_path / "model.pt")["status"] == "diverged"
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["status"] == "diverged" and "blowup_loss" in log[-1]["reason"]
    metrics = evaluate(EvalJob(spec, tmp_path / "model.pt", tmp_path / "metrics.json"))
    assert metrics["status"] == "diverged" and metrics["splits"] == {}


def test_a_warm_up_epoch_is_not_held_to_blowup_loss(data, tmp_path):
    """A threshold between the warm-up epoch's loss and the later ones': the run is ok and trains exactly
    as without a threshold; without a warm-up, the same threshold stops it at its first epoch."""
    free = train(job(make_spec(data, blowup_loss=None), data, tmp_path / "free"))["history"]
    losses = [e["loss"] for e in free]
    assert losses[0] > max(losses[1:])  # the data make the first epoch the worst
    threshold = (losses[0] + max(losses[1:])) / 2
    held = train(job(make_spec(data, blowup_loss=threshold), data, tmp_path / "held"))
    assert held["status"] == "ok" and [e["loss"] for e in held["history"]] == losses
    cold = train(job(make_spec(data, blowup_loss=threshold, warmup_epochs=0), data, tmp_path / "cold"))
    assert cold["status"] == "diverged" and len(cold["history"]) == 1


def test_non_finite_loss_is_divergence(data, tmp_path):
    spec = make_spec(data, lr=1e30, grad_clip=1e30, epochs=3)
    assert train(job(spec, data, tmp_path))["status"] == "diverged"


def test_corrupt_checkpoint_names_the_file(data, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match=str(path)):
        evaluate(EvalJob(make_spec(data), path, tmp_path / "metrics.json"))
    torch.save({"something": 1}, path)
    with pytest.raises(CheckpointError, match="missing model"):
        load_checkpoint(path)


def test_corrupt_dataset_names_the_file(data):
    path = data[8]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match=str(path)):
        load_dataset(path)


def test_cli_reports_a_corrupt_dataset_without_a_traceback(data, tmp_path):
    data[8].write_bytes(b"junk")
    spec = make_spec(data)
    proc = subprocess.run(
        [sys.executable, "-m", "implicit_repro", "train", "--spec", json.dumps(spec), "--data", str(data[8]),
         "--model-out", str(tmp_path / "m.pt"), "--log-out", str(tmp_path / "l.jsonl")],
        env={"PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert str(data[8]) in proc.stderr and "Traceback" not in proc.stderr
