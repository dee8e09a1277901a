# Helpers shared by every stage: the resolved config and, per paper, its datasets, downloads, runs
# and items, each asked of the paper's package (src/implicit_repro/papers/<paper>/grid.py). No rule
# names a paper: adding one adds its config section, its entry in config/papers.yaml and its package.
import json

ENV = "../envs/implicit_repro.yaml"

from implicit_repro.config import Origin, load_schema, read_yaml, resolve
from implicit_repro.numerics import shell_exports
from implicit_repro.papers import known, part

try:
    CFG = resolve(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
                  origin=Origin(config_layers()))
except ConfigError as exc:
    stop_on_bad_config(exc)

SCALE = CFG["scale"]
# Every job's environment: the package, a headless plotting backend, the run's scale and numerics
# mode (numerics.py: in portable mode, the CPU code paths torch reads when it loads). The prefix is
# formatted like a shell command, hence the doubled braces.
shell.prefix("export PYTHONPATH=%s${{PYTHONPATH:+:$PYTHONPATH}} MPLBACKEND=Agg IMPLICIT_REPRO_SCALE=%s; %s"
             % (SRC, SCALE, shell_exports(CFG["numerics"])))
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


def job_spec(spec):
    """A job's spec, naming the numerics mode when it is not the default: switching to `portable`
    then reruns every training and evaluation (their results differ), while the native runs keep
    their spec, and so their outputs."""
    return spec if CFG["numerics"] == "native" else {**spec, "numerics": CFG["numerics"]}


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
    return ["paper_results/README.md", "paper_results/scorecard.csv", "paper_results/scorecard_summary.md"]


# --- the HTML report (`snakemake --report report.html`): categories and captions ------------------
SCORECARD_CATEGORY = "1. Scorecard"


def item_category(w):
    """Papers in the order of config/papers.yaml, after the scorecard."""
    k = list(PAPER_FACTS).index(w.paper) + 2
    return f"{k}. {w.paper}: {PAPER_FACTS[w.paper]['title']}"


def item_subcategory(w):
    claim = PAPER_FACTS[w.paper]["items"][w.item]["claims"][0]
    return f"claim {claim}: {PAPER_FACTS[w.paper]['claims'][claim]}"


def item_caption(w):
    """What the item shows, the claims it bears on, the scale, where its reported numbers come from
    and where the choices behind it are written (RST: rendered by the report)."""
    facts = PAPER_FACTS[w.paper]
    meta = facts["items"][w.item]
    claims = "; ".join(f"claim {c}, \"{facts['claims'][c]}\"" for c in meta["claims"])
    cells = facts.get("reported", {}).get(w.item, [])
    provenance = sorted({c["provenance"] for c in cells})
    reported = (f"its reported column holds {len(cells)} number(s) of the paper, provenance "
                f"{', '.join(provenance)} (config/papers.yaml)." if cells else
                "no number of the paper is known for it, so its reported column is empty (provenance unknown).")
    ours = " This item is OUR ADDITION, not one of the paper's." if meta.get("ours") else ""
    return (f"**{w.paper}** ``{w.item}`` ({meta['kind']}): {meta['what']}.{ours} Bears on {claims}. Scale: "
            f"**{SCALE}**; {reported} Where the paper is silent, this project's choices (values in force) are "
            f"listed under \"Choices where the papers are silent\" in paper_results/README.md (category "
            f"\"{SCORECARD_CATEGORY}\"). The table's or figure's own caption (in its .md file or title) says "
            "how each number is computed.")


def item_labels(w):
    return {"paper": w.paper, "item": w.item, "scale": SCALE}
