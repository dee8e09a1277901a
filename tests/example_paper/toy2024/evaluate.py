"""toy2024's evaluation: accuracy after every test-time iteration, on each split."""

from __future__ import annotations

from implicit_repro.checkpoint import load_weights
from implicit_repro.data.store import load_dataset
from implicit_repro.evaluation import EvalJob
from implicit_repro.sweep import batched_sweep
from implicit_repro.train import job_task, make_model, train_split


def evaluate(job: EvalJob) -> dict:
    spec, ev = job.spec, job.spec["eval"]
    result = {"paper": spec["paper"], "task": spec["task"], "seed": spec["seed"], "status": job.checkpoint["status"],
              "train_iters": spec["train"]["iters"], "accuracy": {}}
    if result["status"] != "ok":
        return result
    model = make_model(spec)
    load_weights(model, job.checkpoint["model"], job.model_path)
    model.eval()
    task = job_task(spec)
    for split, path in spec["splits"]:
        data = load_dataset(path)
        if split == "in_distribution":
            n_train = len(train_split(spec, data)[0])
            x, y = task.model_input(data["inputs"][n_train:]), task.target(data["targets"][n_train:])
            n = ev.get("n_in_distribution", ev["n_examples"])
        else:
            x, y, n = task.model_input(data["inputs"]), task.target(data["targets"]), ev["n_examples"]
        sweep = batched_sweep(model, task, x[:n], y[:n], ev["max_iters"], ev["batch_size"])
        result["accuracy"][split] = sweep.correct.float().mean(1).tolist()
    return result
