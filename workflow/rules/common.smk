# Helpers shared by every stage: the resolved config and, per paper, its datasets, downloads, runs
# and items, each asked of the paper's package (src/implicit_repro/papers/<paper>/grid.py). No rule
# names a paper: adding one adds its config section, its entry in config/papers.yaml and its package.
import json

# (The prefix is formatted like a shell command, hence the doubled braces.)
shell.prefix("export PYTHONPATH=%s${{PYTHONPATH:+:$PYTHONPATH}} MPLBACKEND=Agg IMPLICIT_REPRO_SCALE=%s; "
             % (SRC, config.get("scale", "small")))
ENV = "../envs/implicit_repro.yaml"

from implicit_repro.config import Origin, load_schema, read_yaml, resolve
from implicit_repro.papers import known, part

try:
    CFG = resolve(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
                  origin=Origin(config_layers()))
except ConfigError as exc:
    stop_on_bad_config(exc)

SCALE = CFG["scale"]
RES = CFG["resources"]
PAPERS_FILE = "config/papers.yaml"
try:
    PAPER_FACTS = read_yaml(PAPERS_FILE)
except ConfigError as exc:
    stop_on_bad_config(exc)

# The papers of this run: those with a section in the config, a package and facts in papers.yaml.
PAPERS = [p for p in known() if p in CFG and p in PAPER_FACTS]
GRIDS = {p: part(p, "grid") for p in PAPERS}
RUNS = {r.key: r for p in PAPERS for r in GRIDS[p].runs(CFG[p])}
DATASETS = {path: d for p in PAPERS for path, d in GRIDS[p].datasets(CFG[p]).items()}
DOWNLOADS = {d.path: d for p in PAPERS for d in GRIDS[p].downloads(CFG[p])}


wildcard_constraints:
    paper="[a-z]+[0-9]{4}",
    task="[a-z][a-z0-9_]*",
    split=r"[a-z]+[0-9]*[\w.\-]*",
    run=r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*",
    seed=r"\d+",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def run_of(w):
    """The run a train or evaluate job's wildcards name."""
    return RUNS[f"{w.paper}/{w.task}/{w.run}/seed{w.seed}"]


def dataset_of(w):
    return DATASETS[f"data/{w.paper}/{w.task}/{w.split}.pt"]


def download_of(w):
    return DOWNLOADS[f"data/raw/{w.source}/{w.file}"]


def data_outputs():
    """Every dataset file, and the raw files they are built from (`data/` is the DVC stage's output)."""
    return sorted(DATASETS) + sorted(DOWNLOADS)


def train_outputs():
    return [r.path("checkpoints", "model.pt") for r in RUNS.values()]


def metrics_of(runs):
    return [r.path("results", "metrics.json") for r in runs]


def evaluate_outputs():
    return metrics_of(RUNS.values())


def item_metrics(paper, item):
    """The metrics files an item is built from (the scorecard's when ``item`` is None)."""
    return metrics_of(GRIDS[paper].item_runs(CFG[paper], item))


def item_train_logs(paper, item):
    """The training logs of the same runs, in the same order: the wall-clock training time, which
    the deterministic metrics files do not hold."""
    return [r.path("checkpoints", "train_log.jsonl") for r in GRIDS[paper].item_runs(CFG[paper], item)]


def item_files(paper, item):
    """Tables are paper_results/<paper>/<item>.{csv,md,tex}, figures figures/<paper>/<item>.{png,pdf}."""
    if PAPER_FACTS[paper]["items"][item]["kind"] == "table":
        return expand(f"paper_results/{paper}/{item}.{{ext}}", ext=("csv", "md", "tex"))
    return expand(f"figures/{paper}/{item}.{{ext}}", ext=("png", "pdf"))


def all_items():
    """(paper, item) of every item of the papers of this run."""
    return [(paper, item) for paper in PAPERS for item in PAPER_FACTS[paper]["items"]]


def report_outputs():
    return ["paper_results/README.md", "paper_results/scorecard.csv"]
