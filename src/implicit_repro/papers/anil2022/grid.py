"""anil2022's jobs: its datasets, downloads and runs, read off its config section.

A run is one (task, intervention, gradient, seed): the intervention grid of each task, trained with
the task's ``train.gradient``, plus the gradient study of table2 (one intervention trained as a DEQ
with each gradient). A run both use is trained once. Imported by the Snakefile: no torch here.
"""

from __future__ import annotations

from implicit_repro.data.registry import MNIST_FILE_NAMES, MNIST_RAW_DIR, raw_inputs
from implicit_repro.data.registry import splits as task_splits
from implicit_repro.errors import ConfigError
from implicit_repro.interventions import get_intervention
from implicit_repro.papers import Dataset, Download, Run, unique_runs
from implicit_repro.specs import check_eval_counts, check_lr_milestones
from implicit_repro.work import batched_steps

PAPER = "anil2022"
GRADIENT_STUDY_ITEM = "table2_phantom_vs_ift"  # the one item built from the gradient study's runs


def tasks(section: dict) -> list[str]:
    return [task for task, t in section.items() if t["enabled"]]


def split_params(section: dict, task: str) -> dict[str, dict]:
    """Split name -> generator parameters, the training split first."""
    return dict(task_splits(task, section[task]["data"]))


def dataset(section: dict, task: str, split: str) -> Dataset:
    params = split_params(section, task)[split]
    return Dataset(PAPER, task, split, params, tuple(raw_inputs(task, params)))


def eval_splits(section: dict, task: str) -> dict[str, str]:
    """Split name -> dataset file; the in-distribution split is the held-out part of the training
    split, then come the harder ones."""
    names = list(split_params(section, task))
    splits = {"in_distribution": dataset(section, task, names[0]).path}
    splits.update({name: dataset(section, task, name).path for name in names[1:]})
    return splits


def datasets(section: dict) -> dict[str, Dataset]:
    """Path -> dataset, of every split of every enabled task."""
    out = [dataset(section, task, split) for task in tasks(section) for split in split_params(section, task)]
    return {d.path: d for d in out}


def downloads(section: dict) -> list[Download]:
    """The raw MNIST files, when the digits task reads MNIST (``data.source: mnist``)."""
    t = section.get("digits")
    if not (t and t["enabled"] and t["data"]["source"] == "mnist"):
        return []
    mnist = t["data"]["mnist"]
    return [Download(f"{MNIST_RAW_DIR}/{name}", mnist["base_url"] + name, sha256)
            for name, sha256 in sorted(mnist["checksums"].items())]


def _model_options(section: dict, task: str) -> dict:
    t = section[task]
    if task == "matrix_inversion":
        return {**t["model"], "matrix_size": t["data"]["n"]}
    return t["model"]


def _run(section: dict, task: str, intervention: str, gradient: str, seed: int) -> Run:
    t = section[task]
    train = {
        "paper": PAPER, "task": task, "intervention": intervention, "seed": int(seed),
        "data": {"train_fraction": t["data"]["train_fraction"]},
        "model": _model_options(section, task), "task_params": t["task_params"],
        "train": {**t["train"], "gradient": gradient},
        "intervention_params": t["intervention_params"],
    }
    # A list of [name, path] pairs: the JSON keeps the order (in-distribution, then harder and harder).
    splits = [[name, path] for name, path in eval_splits(section, task).items()]
    names = list(split_params(section, task))
    return Run(
        PAPER, task, f"{intervention}/{gradient}", int(seed),
        train_spec=train, eval_spec={**train, "eval": t["eval"], "splits": splits},
        train_data=dataset(section, task, names[0]).path, eval_data=tuple(sorted({p for _, p in splits})),
    )


def grid_runs(section: dict) -> list[Run]:
    """The intervention grid of every task, trained with the task's ``train.gradient``."""
    return [
        _run(section, task, i, section[task]["train"]["gradient"], s)
        for task in tasks(section)
        for i in section[task]["interventions"]
        for s in section[task]["seeds"]
    ]


def study_runs(section: dict) -> list[Run]:
    """The gradient study of table2_phantom_vs_ift."""
    out = []
    for task in tasks(section):
        study = section[task]["gradient_study"]
        out += [_run(section, task, study["intervention"], g, s) for g in study["gradients"] for s in study["seeds"]]
    return out


def runs(section: dict) -> list[Run]:
    """Every run, task by task (grid then study), each once."""
    return unique_runs([r for task in tasks(section)
                        for r in grid_runs({task: section[task]}) + study_runs({task: section[task]})])


def item_runs(section: dict, item: str) -> list[Run]:
    """The runs an item is built from: the gradient study for table2, the grid for the others.
    The scorecard and the README read the grid (``item=None``)."""
    return study_runs(section) if item == GRADIENT_STUDY_ITEM else grid_runs(section)


def check(section: dict, where: str) -> None:
    """Constraints of this section a JSON schema cannot express; raises ConfigError naming the key."""
    for task_name, task in section.items():
        key = f"anil2022.{task_name}"

        def fail(subkey: str, why: str) -> None:
            raise ConfigError(f"{where}: key `{key}.{subkey}` {why}")

        ip, ev, tr, data = task["intervention_params"], task["eval"], task["train"], task["data"]
        if ip["budget_min"] > ip["budget_max"]:
            fail("intervention_params.budget_min", "exceeds budget_max.")
        if ev["max_iters"] < tr["iters"]:
            fail("eval.max_iters", f"must be at least `{key}.train.iters` so the sweep covers the training budget.")
        if ev["aa_iters"] > ev["max_iters"]:
            fail("eval.aa_iters", f"must not exceed `{key}.eval.max_iters` (correctness at the AA budget is "
                                  "read off the sweep).")
        if ev["max_iters"] + 1 - ev["cycle_max_period"] < 2:
            fail("eval.cycle_max_period", f"leaves too few of the {ev['max_iters']} iterations to detect a cycle; "
                                          "lower it or raise eval.max_iters.")
        if ev["early_exit_tol"] is not None and ev["early_exit_tol"] > ev["cycle_tol"]:
            fail("eval.early_exit_tol", f"({ev['early_exit_tol']}) must not exceed `{key}.eval.cycle_tol` "
                                        f"({ev['cycle_tol']}): an example that stops there is classified a fixed "
                                        "point, which needs its steps below cycle_tol. Use 0 (bit-exact) or less.")
        if len(set(task["seeds"])) != len(task["seeds"]):
            fail("seeds", "repeats a seed.")
        check_lr_milestones(tr, fail)
        check_eval_counts(data, ev, fail, key)
        _check_harder(task_name, data, fail)
        if task_name == "mazes":
            for size in (data["train_size"], *data["harder_sizes"]):
                if size % 2 == 0:
                    fail("data", f"has maze size {size}; maze sizes are odd (S = 2c - 1 for c cells a side).")
        if task_name == "edge_copy" and data["train_nodes"][0] > data["train_nodes"][1]:
            fail("data.train_nodes", "must be [fewest, most] nodes.")
        if task_name == "digits" and data["train_sigma"][0] > data["train_sigma"][1]:
            fail("data.train_sigma", "must be [lowest, highest] blur.")
        if task_name == "digits" and data["source"] == "mnist":
            if "mnist" not in data:
                fail("data.mnist", "is required when `data.source` is mnist: give its base_url and the SHA-256 "
                                   "of each of the four files under checksums.")
            for name in MNIST_FILE_NAMES:
                if name not in data["mnist"]["checksums"]:
                    fail(f"data.mnist.checksums.{name}", "is required when `data.source` is mnist: every "
                                                         "downloaded file is checked against its SHA-256.")
        if task_name in ("matrix_inversion", "edge_copy") and "threshold" not in task["task_params"]:
            fail("task_params.threshold", "is required: the regression tasks count an example correct below it.")


# Per task: the key of the harder splits, how one is harder than the training split, and the training
# value(s) it must exceed (matrix inversion: a smaller c is worse conditioned).
_HARDER = {
    "prefix_sums": ("harder_bits", "longer than `train_bits`", lambda d: d["train_bits"], lambda v, t: v > t),
    "mazes": ("harder_sizes", "larger than `train_size`", lambda d: d["train_size"], lambda v, t: v > t),
    "matrix_inversion": ("harder_c", "smaller (worse conditioned) than `train_c`", lambda d: d["train_c"],
                         lambda v, t: v < t),
    "edge_copy": ("harder_nodes", "larger than the most training nodes", lambda d: d["train_nodes"][1],
                  lambda v, t: v > t),
    "digits": ("harder_sigmas", "blurrier than the highest training sigma", lambda d: d["train_sigma"][1],
               lambda v, t: v > t),
}


def _check_harder(task: str, data: dict, fail) -> None:
    """A harder split must be harder than the training split and distinct: two splits of one name
    share one file, and a harder split named like the training split would overwrite its data."""
    key, how, train_value, harder = _HARDER[task]
    values = data[key]
    if len(set(values)) != len(values):
        fail(f"data.{key}", f"repeats a value ({values}); each harder split is one file. List each once.")
    train = train_value(data)
    for value in values:
        if not harder(value, train):
            fail(f"data.{key}", f"has {value}, which is not {how} ({train}): a harder split must be harder than "
                                "the training split (and one of the same name would replace the training data). "
                                "Remove it or pick a harder value.")


# ---------------------------------------------------------------- the compute plan's work model

def work(section: dict, run: Run) -> dict[str, float]:
    """How much work a run's jobs do, for the compute plan (``plan.py``), in the units of ``work.py``:
    batched steps, each a fixed overhead plus examples × width² × positions × blocks. Training: per
    batch, the forward iterations (the mean budget for a random one) and a backward pass counted as
    two more; the anti-alignment penalty runs one more start of the batch as far again.
    Evaluation, per split: the zero-init sweep (max_iters), AA's second solve and the all-pairs
    restarts (aa_iters; the all-pairs variant's own first solve too); on the in-distribution split
    the attack's forward and backward passes through aa_iters, and its three reference solves.
    Early exit is not modelled: it shortens the solves by what the models' convergence allows, which
    the measured timings carry. ``activations`` (batch × iterations × width × positions × blocks) is
    what backprop through the unrolled iterations keeps, for memory."""
    spec, data = run.eval_spec, datasets(section)
    m, tr, ev, ip = spec["model"], spec["train"], spec["eval"], spec["intervention_params"]
    per_position = m["width"] ** 2 * m.get("blocks", 1)
    intervention = get_intervention(spec["intervention"])
    iters = (ip["budget_min"] + ip["budget_max"]) / 2 if intervention.budget == "random" else tr["iters"]
    n_train = data[run.train_data].params["count"] * spec["data"]["train_fraction"]
    unit = per_position * _positions(run.task, data[run.train_data].params)
    train = batched_steps(n_train, tr["batch_size"], 3 * iters, unit)
    if intervention.penalty != "none":
        train += batched_steps(n_train, tr["batch_size"], 3 * tr["iters"], unit)
    train *= tr["epochs"]
    evaluate = 0.0
    for name, path in spec["splits"]:
        unit = per_position * _positions(run.task, data[path].params)
        held_out = data[path].params["count"] * (1 - spec["data"]["train_fraction"] if name == "in_distribution" else 1)
        n = min(held_out, ev.get("n_in_distribution", ev["n_examples"]) if name == "in_distribution" else ev["n_examples"])
        aa = min(n, ev["aa_examples"])
        pairs = min(aa, ev["aa_pairs_batch"])
        evaluate += (batched_steps(n, ev["batch_size"], ev["max_iters"], unit)
                     + batched_steps(aa, ev["batch_size"], ev["aa_iters"], unit)
                     + batched_steps(pairs, pairs, ev["aa_iters"], unit)
                     + batched_steps(pairs ** 2, ev["batch_size"], ev["aa_iters"], unit))
        attacked = min(n, ev["attack_examples"]) if name == "in_distribution" else 0
        # attack_steps + 1 forward passes, attack_steps backward ones, and the reference, before and after solves
        evaluate += batched_steps(attacked, max(attacked, 1), ev["aa_iters"] * (3 * ev["attack_steps"] + 4), unit)
    positions = _positions(run.task, data[run.train_data].params)
    return {"train": train, "evaluate": evaluate,
            "activations": tr["batch_size"] * tr["iters"] * m["width"] * m.get("blocks", 1) * positions}


def _positions(task: str, params: dict) -> int:
    if task == "prefix_sums":
        return params["n_bits"]
    if task == "mazes":
        return (2 * params["size"] + 6) ** 2  # the image side of a maze of size S
    if task == "edge_copy":
        return params["max_nodes"] ** 2  # one state per edge of a complete digraph
    if task == "digits":
        return 28 * 28 if params.get("source") == "mnist" else 8 * 8
    return 1  # matrix_inversion: an MLP on the flattened matrix
