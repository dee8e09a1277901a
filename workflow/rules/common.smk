# Helpers shared by every stage: the resolved config and, per paper, its datasets, downloads, runs
# and items, each asked of the paper's package (src/implicit_repro/papers/<paper>/grid.py). No rule
# names a paper: adding one adds its config section, its entry in config/papers.yaml and its package.
import functools
import json
import shlex

ENV = "../envs/implicit_repro.yaml"

from implicit_repro.batches import batches
from implicit_repro.config import Origin, load_schema, read_yaml, resolve
from implicit_repro.numerics import shell_exports
from implicit_repro.papers import ID_DIGITS, identity, known, part
from implicit_repro.papers.contract import PAPER_ID, check_facts, check_papers

PAPERS_FILE = "config/papers.yaml"
try:
    PAPER_FACTS = read_yaml(PAPERS_FILE)
    # Every paper's package meets the contract (papers/contract.py) before its schema or grid is read.
    check_papers(known(), PAPER_FACTS)
    CFG = resolve(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
                  origin=Origin(config_layers()))
    check_facts([p for p in known() if p in CFG], PAPER_FACTS)
except ConfigError as exc:
    stop_on_bad_config(exc)

SCALE = CFG["scale"]
# Every job's environment: the package, a headless plotting backend, the run's scale and numerics
# mode (numerics.py: in portable mode, the CPU code paths torch reads when it loads). The prefix is
# formatted like a shell command, hence the doubled braces.
shell.prefix("export PYTHONPATH=%s${{PYTHONPATH:+:$PYTHONPATH}} MPLBACKEND=Agg IMPLICIT_REPRO_SCALE=%s; %s"
             % (SRC, SCALE, shell_exports(CFG["numerics"])))
RES = CFG["resources"]

# The papers of this run: those with a section in the config, a package and facts in papers.yaml.
PAPERS = [p for p in known() if p in CFG and p in PAPER_FACTS]
GRIDS = {p: part(p, "grid") for p in PAPERS}


def configured(runs):
    """The runs in the config's numerics mode and on its device, which are part of their identity."""
    return [r.configured(CFG["numerics"], CFG["device"]) for r in runs]


@functools.cache  # the config is fixed for the run; items and records ask again and again
def item_runs(paper, item):
    """The runs an item is built from (the scorecard's when ``item`` is None)."""
    return configured(GRIDS[paper].item_runs(CFG[paper], item))


RUNS = [r for p in PAPERS for r in configured(GRIDS[p].runs(CFG[p]))]
# A job's outputs are named <key>-<identity> (papers/__init__.py: identity): a wildcard match finds its run.
TRAINED = {r.stem("train"): r for r in RUNS}
EVALUATED = {r.stem("evaluate"): r for r in RUNS}
# The jobs of several models (batches.py); a batch of one is made by the one-model rule.
TRAIN_BATCHES = batches(RUNS, "train", RES["train"]["models_per_job"])
EVAL_BATCHES = batches(RUNS, "evaluate", RES["evaluate"]["models_per_job"])


def configured_datasets(paper):
    """The paper's datasets in the config's numerics mode: a portable dataset is named apart, as its runs are."""
    return [d.configured(CFG["numerics"]) for d in GRIDS[paper].datasets(CFG[paper]).values()]


DATASETS = {d.path: d for p in PAPERS for d in configured_datasets(p)}
DOWNLOADS = {d.path: d for p in PAPERS for d in GRIDS[p].downloads(CFG[p])}


wildcard_constraints:
    paper=PAPER_ID,
    task="[a-z][a-z0-9_]*",
    split=r"[a-z]+[0-9]*[\w.\-]*",
    run=r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*",
    seed=r"\d+",
    id=r"[0-9a-f]{%d}" % ID_DIGITS,


def as_ancient(paths):
    """Inputs compared by name, not by modification time. A data, checkpoint or metrics file is named
    by its identity (papers/__init__.py), so one that exists is the one the job needs, whatever its
    time: `dvc pull` restores files in no particular order (a checkpoint older than its data) and
    `git clone` writes paper_results/README.md before the items it indexes; timestamps would rerun
    what is current. A missing file is made before its consumers run; a file that exists and is
    remade (--forcerun) does not rerun its consumers by itself (Snakemake skips consumers whose inputs
    are all ancient and present), so the README says to force every later stage too."""
    return [ancient(p) for p in paths]


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def _stem(w):
    return f"{w.paper}/{w.task}/{w.run}/seed{w.seed}-{w.id}"


def _run_named(table, w, what):
    """The run whose outputs the wildcards name; a name of no run of this config (one of an older
    config, say) is an error that says so instead of a KeyError."""
    if _stem(w) not in table:
        stop_on_bad_target(f"{what} {_stem(w)}: no run of the current config (scale {SCALE}) has this key and "
                           "identity. Ask for the outputs of the current config (`snakemake -n` lists them).")
    return table[_stem(w)]


def trained_run(w):
    """The run a train job's wildcards name."""
    return _run_named(TRAINED, w, "checkpoint")


def evaluated_run(w):
    return _run_named(EVALUATED, w, "metrics")


# The files of one run: its checkpoint and training log (train), its metrics file (evaluate).
def checkpoint_of(r):
    return r.path("checkpoints", "model.pt")


def train_log_of(r):
    return r.path("checkpoints", "train_log.jsonl")


def metrics_file_of(r):
    return r.path("results", "metrics.json")


def command_arguments(runs, per_run):
    """A train or evaluate command's arguments for ``runs``: ``per_run(r)``'s flags and values for each
    run, in order, quoted for the shell."""
    return shlex.join([arg for r in runs for arg in per_run(r)])


def train_arguments(runs):
    """Spec, training data, checkpoint and training log of each run."""
    return command_arguments(runs, lambda r: ["--spec", as_json(r.train_job), "--data", r.train_data,
                                              "--model-out", checkpoint_of(r), "--log-out", train_log_of(r)])


def evaluate_arguments(runs):
    """Spec, checkpoint, training log and metrics file of each run."""
    return command_arguments(runs, lambda r: ["--spec", as_json(r.eval_job), "--model", checkpoint_of(r),
                                              "--train-log", train_log_of(r), "--out", metrics_file_of(r)])


def dataset_of(w):
    path = f"data/{w.paper}/{w.task}/{w.split}-{w.id}.pt"
    if path not in DATASETS:
        stop_on_bad_target(f"{path}: no dataset of the current config (scale {SCALE}) has this name. Ask for "
                           "the outputs of the current config (`snakemake -n` lists them).")
    return DATASETS[path]


def download_of(w):
    return DOWNLOADS[f"data/raw/{w.source}/{w.file}"]


def data_outputs():
    """Every dataset file, and the raw files they are built from (`data/` is the DVC stage's output)."""
    return sorted(DATASETS) + sorted(DOWNLOADS)


def checkpoints_of(runs):
    return [checkpoint_of(r) for r in runs]


def train_logs_of(runs):
    return [train_log_of(r) for r in runs]


def train_outputs():
    return checkpoints_of(RUNS)


def metrics_of(runs):
    return [metrics_file_of(r) for r in runs]


def evaluate_outputs():
    return metrics_of(RUNS)


def item_metrics(paper, item):
    """The metrics files an item is built from (the scorecard's when ``item`` is None)."""
    return metrics_of(item_runs(paper, item))


def item_train_logs(paper, item):
    """The training logs of the same runs, in the same order: the wall-clock training time, which
    the deterministic metrics files do not hold."""
    return train_logs_of(item_runs(paper, item))


# Items of the committed scale are paper_results/ and figures/, in git; any other scale's live under
# scales/<scale>/ (git-ignored): running a scale overwrites no other scale's items. Data, checkpoints
# and metrics need no such prefix: their identities differ where their configs do.
ITEMS = "" if SCALE == CFG["committed_scale"] else f"scales/{SCALE}/"


def item_inputs(paper, item):
    """What an item is built from, as its inputs record lists it (results/inputs.py)."""
    return {"scale": SCALE, "metrics": item_metrics(paper, item), "train_logs": item_train_logs(paper, item)}


@functools.cache
def readme_inputs():
    """What the README is built from: every paper's scorecard runs, the items and the config."""
    return {"scale": SCALE, "metrics": [p for paper in PAPERS for p in item_metrics(paper, None)],
            "train_logs": [p for paper in PAPERS for p in item_train_logs(paper, None)],
            "produced": [f"{paper}/{item}" for paper, item in all_items()],
            "config": {k: v for k, v in CFG.items() if k != "resources"}}


def inputs_record(paper, item):
    """<ITEMS>paper_results/inputs/<paper>/<item>-<id>.json, named by what the item is built from, and
    an input of the item's rule: a config whose runs differ asks for a record that is not there, so
    the item is rebuilt, Snakemake's records of the last build or not (results/inputs.py)."""
    return f"{ITEMS}paper_results/inputs/{paper}/{item}-{identity(item_inputs(paper, item))}.json"


def readme_inputs_record():
    return f"{ITEMS}paper_results/inputs/README-{identity(readme_inputs())}.json"


def item_files(paper, item):
    """Tables are paper_results/<paper>/<item>.{csv,md,tex}, figures figures/<paper>/<item>.{png,pdf};
    each with its inputs record."""
    if PAPER_FACTS[paper]["items"][item]["kind"] == "table":
        files = expand(f"{ITEMS}paper_results/{paper}/{item}.{{ext}}", ext=("csv", "md", "tex"))
    else:
        files = expand(f"{ITEMS}figures/{paper}/{item}.{{ext}}", ext=("png", "pdf"))
    return files + [inputs_record(paper, item)]


def all_items():
    """(paper, item) of every item of the papers of this run."""
    return [(paper, item) for paper in PAPERS for item in PAPER_FACTS[paper]["items"]]


@functools.cache
def input_records():
    """Path -> content of every inputs record of this config."""
    records = {inputs_record(paper, item): item_inputs(paper, item) for paper, item in all_items()}
    return {**records, readme_inputs_record(): readme_inputs()}


def known_record(path):
    records = input_records()
    if path not in records:
        stop_on_bad_target(f"{path}: no item of the current config (scale {SCALE}) is built from this record. "
                           "Ask for the outputs of the current config (`snakemake -n` lists them).")
    return records[path]


def report_outputs():
    names = ("README.md", "scorecard.csv", "scorecard_summary.md")
    return [f"{ITEMS}paper_results/{name}" for name in names] + [readme_inputs_record()]


# --- the HTML report (`snakemake --report report.html`): categories and captions ------------------
SCORECARD_CATEGORY = "1. Scorecard"


def item_category(w):
    """Papers in the order of config/papers.yaml, after the scorecard."""
    k = list(PAPER_FACTS).index(w.paper) + 2
    return f"{k}. {w.paper}: {PAPER_FACTS[w.paper]['title']}"


def item_subcategory(w):
    claim = PAPER_FACTS[w.paper]["items"][w.item]["claims"][0]
    return f"claim {claim}: {PAPER_FACTS[w.paper]['claims'][claim]['text']}"


def item_caption(w):
    """What the item shows, the claims it bears on, the scale, where its reported numbers come from
    and where the choices behind it are written (RST: rendered by the report)."""
    facts = PAPER_FACTS[w.paper]
    meta = facts["items"][w.item]
    claims = "; ".join(f"claim {c}, \"{facts['claims'][c]['text']}\"" for c in meta["claims"])
    cells = facts.get("reported", {}).get(w.item, [])
    provenance = sorted({c["provenance"] for c in cells})
    reported = (f"its reported column holds {len(cells)} number(s) of the paper, provenance "
                f"{', '.join(provenance)} (config/papers.yaml)." if cells else
                "no number of the paper is known for it, so its reported column is empty (provenance unknown).")
    ours = " This item is OUR ADDITION, not one of the paper's." if meta.get("ours") else ""
    return (f"**{w.paper}** ``{w.item}`` ({meta['kind']}): {meta['what']}.{ours} Bears on {claims}. Scale: "
            f"**{SCALE}**; {reported} Where the paper is silent, this project's choices (values in force) are "
            f"listed under \"Choices where the papers are silent\" in {ITEMS}paper_results/README.md (category "
            f"\"{SCORECARD_CATEGORY}\"). The table's or figure's own caption (in its .md file or title) says "
            "how each number is computed.")


def item_labels(w):
    return {"paper": w.paper, "item": w.item, "scale": SCALE}
