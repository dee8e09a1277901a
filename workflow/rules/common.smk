# Helpers shared by every stage: the resolved config, paths, and the per-job parameter specs.
import json
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
# Jobs run `python -m implicit_repro` from this checkout, whether or not the package is installed.
sys.path.insert(0, SRC)
# (The prefix is formatted like a shell command, hence the doubled braces.)
shell.prefix("export PYTHONPATH=%s${{PYTHONPATH:+:$PYTHONPATH}} MPLBACKEND=Agg; " % SRC)
ENV = "../envs/implicit_repro.yaml"

# Keep torch out of the Snakefile's imports: a no-op rerun should take about a second.
from implicit_repro.config import load_schema, resolve
from implicit_repro.errors import ConfigError

try:
    CFG = resolve(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except ConfigError as exc:
    raise WorkflowError(f"invalid configuration: {exc}") from None

SCALE = CFG["scale"]
RES = CFG["resources"]
PAPERS_FILE = "config/papers.yaml"


wildcard_constraints:
    paper="[a-z]+[0-9]{4}",
    task="[a-z_]+",
    intervention="[a-z_]+",
    seed=r"\d+",
    bits=r"\d+",


def task_cfg(paper, task):
    return CFG[paper][task]


def dataset_path(paper, task, bits):
    return f"data/{paper}/{task}/bits{bits}.pt"


def job_dir(stage, w):
    return f"{stage}/{w.paper}/{w.task}/{w.intervention}/seed{w.seed}"


def train_spec(w):
    """Everything a training job depends on, and nothing else (a change re-runs exactly it)."""
    t = task_cfg(w.paper, w.task)
    return {
        "paper": w.paper, "task": w.task, "intervention": w.intervention, "seed": int(w.seed),
        "data": {"train_fraction": t["data"]["train_fraction"]},
        "model": t["model"], "train": t["train"], "intervention_params": t["intervention_params"],
    }


def eval_splits(paper, task):
    """Split name -> dataset file; the in-distribution split comes from the training length."""
    d = task_cfg(paper, task)["data"]
    splits = {"in_distribution": dataset_path(paper, task, d["train_bits"])}
    splits.update({f"bits{b}": dataset_path(paper, task, b) for b in d["harder_bits"]})
    return splits


def eval_spec(w):
    # A list of [name, path] pairs: the JSON keeps the order (in-distribution, then harder and harder).
    splits = [[name, path] for name, path in eval_splits(w.paper, w.task).items()]
    return {**train_spec(w), "eval": task_cfg(w.paper, w.task)["eval"], "splits": splits}


def jobs(paper, task):
    t = task_cfg(paper, task)
    return [(i, s) for i in t["interventions"] for s in t["seeds"]]


def metrics_files(paper, task):
    return [f"results/{paper}/{task}/{i}/seed{s}/metrics.json" for i, s in jobs(paper, task)]


def as_json(fn):
    return lambda w: json.dumps(fn(w), sort_keys=True)


def data_outputs():
    return [
        path
        for task in CFG["anil2022"]
        for path in sorted(set(eval_splits("anil2022", task).values()))
    ]


def train_outputs():
    return [
        f"checkpoints/anil2022/{task}/{i}/seed{s}/model.pt"
        for task in CFG["anil2022"]
        for i, s in jobs("anil2022", task)
    ]


def evaluate_outputs():
    return [path for task in CFG["anil2022"] for path in metrics_files("anil2022", task)]


# Items of anil2022 built so far: id -> (output pattern, extensions).
ANIL2022_ITEMS = {
    "table_interventions": ("paper_results/anil2022/table_interventions.{ext}", ("csv", "md", "tex")),
    "fig_upward_generalization": ("figures/anil2022/fig_upward_generalization.{ext}", ("png", "pdf")),
}


def item_outputs(item):
    pattern, exts = ANIL2022_ITEMS[item]
    return expand(pattern, ext=exts)


def report_outputs():
    return ["paper_results/README.md", "paper_results/scorecard.csv"]
