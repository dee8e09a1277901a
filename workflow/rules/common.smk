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
from implicit_repro.data.registry import MNIST_FILE_NAMES, MNIST_RAW_DIR, raw_inputs
from implicit_repro.data.registry import splits as task_splits
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
    split=r"[a-z]+[0-9][\w.\-]*",
    intervention="[a-z_]+",
    gradient="unrolled|ift|phantom|jfb",
    seed=r"\d+",


def tasks(paper):
    return [task for task, t in CFG[paper].items() if t["enabled"]]


def task_cfg(paper, task):
    return CFG[paper][task]


def split_params(paper, task):
    """Split name -> generator parameters, the training split first."""
    return dict(task_splits(task, task_cfg(paper, task)["data"]))


def dataset_path(paper, task, split):
    return f"data/{paper}/{task}/{split}.pt"


def generate_inputs(w):
    """The downloaded files a split is generated from (the MNIST files when digits read MNIST)."""
    return raw_inputs(w.task, split_params(w.paper, w.task)[w.split])


def mnist_files():
    """The raw MNIST files, downloaded by rule download_mnist."""
    return [f"{MNIST_RAW_DIR}/{name}" for name in MNIST_FILE_NAMES]


def mnist_needed():
    """Whether an enabled task reads MNIST (digits with `data.source: mnist`)."""
    t = CFG["anil2022"].get("digits")
    return bool(t and t["enabled"] and t["data"]["source"] == "mnist")


def mnist_settings():
    """The digits task's `data.mnist` (base_url, checksums); config.py has checked it when needed."""
    try:
        return CFG["anil2022"]["digits"]["data"]["mnist"]
    except KeyError:
        raise WorkflowError(
            "the MNIST files are requested but `anil2022.digits.data.mnist` is not configured"
        ) from None


def train_split_path(paper, task):
    return dataset_path(paper, task, next(iter(split_params(paper, task))))


def eval_splits(paper, task):
    """Split name -> dataset file; the in-distribution split is the held-out part of the training
    split, then come the harder ones."""
    names = list(split_params(paper, task))
    splits = {"in_distribution": dataset_path(paper, task, names[0])}
    splits.update({name: dataset_path(paper, task, name) for name in names[1:]})
    return splits


def model_options(paper, task):
    t = task_cfg(paper, task)
    if task == "matrix_inversion":
        return {**t["model"], "matrix_size": t["data"]["n"]}
    return t["model"]


def train_spec(w):
    """Everything a training job depends on, and nothing else (a change re-runs exactly it)."""
    t = task_cfg(w.paper, w.task)
    return {
        "paper": w.paper, "task": w.task, "intervention": w.intervention, "seed": int(w.seed),
        "data": {"train_fraction": t["data"]["train_fraction"]},
        "model": model_options(w.paper, w.task), "task_params": t["task_params"],
        "train": {**t["train"], "gradient": w.gradient},
        "intervention_params": t["intervention_params"],
    }


def eval_spec(w):
    # A list of [name, path] pairs: the JSON keeps the order (in-distribution, then harder and harder).
    splits = [[name, path] for name, path in eval_splits(w.paper, w.task).items()]
    return {**train_spec(w), "eval": task_cfg(w.paper, w.task)["eval"], "splits": splits}


def grid_jobs(paper, task):
    """(intervention, gradient, seed) of the intervention grid, trained with `train.gradient`."""
    t = task_cfg(paper, task)
    return [(i, t["train"]["gradient"], s) for i in t["interventions"] for s in t["seeds"]]


def study_jobs(paper, task):
    """(intervention, gradient, seed) of the gradient study of table2_phantom_vs_ift."""
    study = task_cfg(paper, task)["gradient_study"]
    return [(study["intervention"], g, s) for g in study["gradients"] for s in study["seeds"]]


def jobs(paper, task):
    return list(dict.fromkeys(grid_jobs(paper, task) + study_jobs(paper, task)))


def job_path(stage, paper, task, job, name):
    intervention, gradient, seed = job
    return f"{stage}/{paper}/{task}/{intervention}/{gradient}/seed{seed}/{name}"


def as_json(fn):
    return lambda w: json.dumps(fn(w), sort_keys=True)


def data_outputs():
    """Every dataset file, and the raw files they are built from (`data/` is the DVC stage's output)."""
    splits = {path for task in tasks("anil2022") for path in eval_splits("anil2022", task).values()}
    return sorted(splits) + (mnist_files() if mnist_needed() else [])


def train_outputs():
    return [
        job_path("checkpoints", "anil2022", task, job, "model.pt")
        for task in tasks("anil2022")
        for job in jobs("anil2022", task)
    ]


def metrics_of(jobs_of, paper="anil2022"):
    return [
        job_path("results", paper, task, job, "metrics.json")
        for task in tasks(paper)
        for job in jobs_of(paper, task)
    ]


def evaluate_outputs():
    return metrics_of(jobs)


def item_metrics(item):
    """The metrics files an item is built from: the gradient study for table2, else the grid."""
    return metrics_of(study_jobs if item == "table2_phantom_vs_ift" else grid_jobs)


# Items of anil2022 (every item of its spec): id -> (output pattern, extensions). Tables are the
# ids starting with "table", figures those starting with "fig"; each item's builder is registered in
# src/implicit_repro/results/registry.py.
def _item_files(item):
    if item.startswith("table"):
        return (f"paper_results/anil2022/{item}.{{ext}}", ("csv", "md", "tex"))
    return (f"figures/anil2022/{item}.{{ext}}", ("png", "pdf"))


ANIL2022_ITEMS = {
    item: _item_files(item)
    for item in (
        "table1_adversarial_init",
        "table2_phantom_vs_ift",
        "fig_upward_generalization",
        "fig_aa_vs_accuracy",
        "table_aa_accuracy_correlation",
        "fig_interventions",
        "table_interventions",
        "fig_per_example_aa",
        "table_per_example_aa",
        "fig_convergence_traces",
    )
}


def item_outputs(item):
    pattern, exts = ANIL2022_ITEMS[item]
    return expand(pattern, ext=exts)


def report_outputs():
    return ["paper_results/README.md", "paper_results/scorecard.csv"]
