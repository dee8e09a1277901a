"""song2023's jobs: datasets, downloads and the run grid of its studies, read off its config section.

Each study (``song2023.studies.<name>``) asks for runs: a (task, variant, depth, width, density,
seed). The grid merges them: a run two studies need is trained once and carries both studies' names
into its metrics, which is how each item finds its runs. Imported by the Snakefile: no torch here.

Run ids are ``<variant>/L<depth>_w<width>_d<density>``; for the DEQ variants L is the solver's
evaluation budget (``deq.max_iter``, or the study's depth where depth is the study's axis).
"""

from __future__ import annotations

from implicit_repro.data.registry import splits as task_splits
from implicit_repro.errors import ConfigError
from implicit_repro.work import batched_steps
from implicit_repro.papers import Dataset, Download, Run
from implicit_repro.specs import check_eval_counts, check_lr_milestones

PAPER = "song2023"
STUDIES = ("wt_vs_deq", "capacity", "sparse_masks", "design_guidelines", "memory_vs_depth", "other_paradigm")
SEQUENCE_TASK = "prefix_sums"  # other_paradigm: anil2022's task, upward generalization

# Variant -> its gradient; the model's own registry (models.VARIANTS, which imports torch) and the
# schema's enum say the same, and tests/test_song2023_grid.py holds the three together.
GRADIENTS = {"wt": "unrolled", "untied": "unrolled", "wt_masked_distinct": "unrolled",
             "wt_masked_shared": "unrolled", "deq_ift": "ift", "deq_jr": "ift", "deq_phantom": "phantom",
             "deq_jfb": "jfb"}
MASKED = ("wt_masked_distinct", "wt_masked_shared")
DEQ = ("deq_ift", "deq_jr", "deq_phantom", "deq_jfb")
# The vision datasets: input channels, classes, and for the downloaded ones the archive file.
VISION = {"digits": (1, 10), "cifar10": (3, 10), "cifar100": (3, 100)}
CIFAR_RAW_DIR = "data/raw/cifar"
KERNEL = 3  # the block's convolutions are 3 wide (3x3 on images)


def _fmt(value: float) -> str:
    return f"{value:g}"


def sequence_reach(depth: int) -> int:
    """Positions information travels in a 1-D ImplicitNet (models.py) run for ``depth`` steps from the zero
    state: the 3-wide injection convolution (1), two 3-wide convolutions per step after the first
    (whose convolutions see only the zero state), and the 1x1 head (0). A harder prefix-sum length n
    needs n - 1 (the last parity depends on the first bit), so claim 5's upward generalization is
    tested only by lengths beyond this (tests/test_difficulty.py). The GroupNorms pool every position,
    but only as per-group means and variances, blind to order."""
    return 1 + 2 * (depth - 1)


def run_id(variant: str, depth: int, width: int, density: float) -> str:
    return f"{variant}/L{depth}_w{width}_d{_fmt(density)}"


# ---------------------------------------------------------------- datasets

def vision_task(section: dict) -> str:
    return section["data"]["dataset"]


def _cifar_archive(name: str) -> str:
    from implicit_repro.data.cifar_sources import CIFAR  # torch-free

    return f"{CIFAR_RAW_DIR}/{CIFAR[name].archive}"


def _vision_datasets(section: dict) -> dict[str, Dataset]:
    name = vision_task(section)
    out = {}
    for part in ("train", "test"):
        if name == "digits":
            params, raw = {"source": "sklearn", "part": part}, ()
        else:
            from implicit_repro.data.cifar_sources import CIFAR

            archive = _cifar_archive(name)
            params, raw = {"source": name, "part": part, "archive": archive, "sha256": CIFAR[name].sha256}, (archive,)
        d = Dataset(PAPER, name, part, params, raw)
        out[d.path] = d
    return out


def _sequence_splits(section: dict) -> dict[str, dict]:
    data = section["studies"]["other_paradigm"]["data"]
    return dict(task_splits(SEQUENCE_TASK, data))


def _sequence_path(section: dict, split: str) -> str:
    return Dataset(PAPER, SEQUENCE_TASK, split, _sequence_splits(section)[split]).path


def _vision_path(section: dict, part: str) -> str:
    return next(path for path, d in _vision_datasets(section).items() if d.split == part)


def datasets(section: dict) -> dict[str, Dataset]:
    """Path -> dataset: the vision task's train and test parts, and the sequence task's splits."""
    out = _vision_datasets(section)
    sequence = [Dataset(PAPER, SEQUENCE_TASK, split, params) for split, params in _sequence_splits(section).items()]
    out.update({d.path: d for d in sequence})
    return out


def downloads(section: dict) -> list[Download]:
    name = vision_task(section)
    if name == "digits":
        return []
    from implicit_repro.data.cifar_sources import CIFAR

    spec = CIFAR[name]
    return [Download(_cifar_archive(name), section["data"]["cifar"]["base_url"] + spec.archive, spec.sha256)]


# ---------------------------------------------------------------- parameter counts (matched widths)

# A GroupNorm group of one channel normalizes that channel to a constant: every group needs two.
MIN_CHANNELS_PER_GROUP = 2
# A dense reference "matches" a masked net when its parameter count is within this fraction of
# the target; the claims check it on the trained runs' own counts and say when one misses.
MATCH_TOLERANCE = 0.1


def group_count(width: int, most: int) -> int:
    """The GroupNorm groups of a net of ``width`` channels: the largest divisor of the width that is
    at most ``most`` and leaves two channels per group."""
    return max(g for g in range(1, min(most, width) + 1)
               if width % g == 0 and width >= MIN_CHANNELS_PER_GROUP * g)


def dense_parameters(width: int, in_channels: int, classes: int, dims: int = 2, blocks: int = 1,
                     weight_norm: bool = False) -> int:
    """Parameters of the net at ``width`` with ``blocks`` distinct blocks (1: weight-tied): the
    injection (conv with bias, GroupNorm), per block two bias-free convs (with weight norm, each
    also a scale per output channel) and three GroupNorms, and the head (images: a 1x1 conv with
    bias, pool, linear; sequences: a 1x1 conv). models.count_parameters counts the same (tested)."""
    k = KERNEL ** dims
    inject = k * in_channels * width + width + 2 * width
    block = 2 * k * width * width + 3 * 2 * width + (2 * width if weight_norm else 0)
    head = width * classes + classes + (width * width + width if dims == 2 else 0)
    return inject + blocks * block + head


def active_parameters(width: int, density: float, in_channels: int, classes: int, dims: int = 2,
                      weight_norm: bool = False) -> int:
    """Parameters one step of a masked weight-tied net uses: each mask keeps round(d x numel) of a
    conv (weight norm's per-channel scales are not masked)."""
    k = KERNEL ** dims
    masked = 2 * round(density * k * width * width)
    return dense_parameters(width, in_channels, classes, dims, weight_norm=weight_norm) - 2 * k * width * width + masked


def matched_width(target: int, groups: int, in_channels: int, classes: int, blocks: int = 1,
                  weight_norm: bool = False) -> int:
    """The width whose dense net's parameter count is closest to ``target`` (any width of at least
    two channels per group; its groups are ``group_count(width, groups)``, so a matched reference
    is not held to multiples of the configured groups and can hit its target)."""
    def gap(w: int) -> int:
        return abs(dense_parameters(w, in_channels, classes, 2, blocks, weight_norm) - target)

    return min(range(MIN_CHANNELS_PER_GROUP, 64 * groups + 1), key=lambda w: (gap(w), w))


# ---------------------------------------------------------------- runs

class _Grid:
    """Collects the studies' requests; a run asked for twice is kept once with both studies."""

    def __init__(self, section: dict):
        self.section = section
        self.requests: dict[tuple, dict] = {}

    def ask(self, study: str, task: str, variant: str, depth: int, width: int, density: float, seed: int,
            match_density: float | None = None, epochs: int | None = None) -> None:
        key = (task, variant, depth, width, float(density), int(seed), epochs)
        entry = self.requests.setdefault(key, {"studies": [], "match_densities": []})
        if study not in entry["studies"]:
            entry["studies"].append(study)
        if match_density is not None and match_density not in entry["match_densities"]:
            entry["match_densities"].append(match_density)  # one run can match several densities

    def runs(self) -> list[Run]:
        return [self._run(*key, **entry) for key, entry in self.requests.items()]

    def _run(self, task, variant, depth, width, density, seed, epochs, studies, match_densities) -> Run:
        s = self.section
        sequence = task == SEQUENCE_TASK
        in_channels, classes = (1, 2) if sequence else VISION[task]
        train = {**s["train"], **(s["studies"]["other_paradigm"]["train"] if sequence else {})}
        if epochs is not None:  # memory_vs_depth measures; it does not need a converged model
            train["epochs"], train["lr_milestones"] = epochs, [m for m in train["lr_milestones"] if m < epochs]
        deq = s["deq"]
        by_variant = train.pop("lr_by_variant", {})  # chosen on the images' validation split: images only
        if not sequence:
            train["lr"] = by_variant.get(variant, train["lr"])
        if variant in DEQ and epochs is None:  # a measurement run (memory_vs_depth) measures the DEQ itself
            train.update(pretrain_epochs=deq["pretrain_epochs"], pretrain_iters=deq["pretrain_iters"])
        train.update(
            gradient=GRADIENTS[variant], iters=depth,
            solver=deq["solver"] if variant in DEQ else "fixed_point", tol=deq["tol"],
            phantom_steps=deq["phantom_steps"], phantom_damping=deq["phantom_damping"],
            jac_reg_weight=deq["jac_reg_weight"] if variant == "deq_jr" else 0.0, measure=True,
        )
        if sequence:
            train["augment"] = None
        spec = {
            "paper": PAPER, "task": task, "seed": seed,  # no intervention: the spec's defaults (specs.DEFAULTS)
            # Images: the training part's tail is the validation split, never trained on.
            "data": {"train_fraction": s["studies"]["other_paradigm"]["data"]["train_fraction"] if sequence
                     else 1.0 - s["data"]["validation_fraction"]},
            "model": {"variant": variant, "depth": depth, "width": width, "density": density,
                      "in_channels": in_channels, "classes": classes, "dims": 1 if sequence else 2,
                      "groups": group_count(width, s["model"]["groups"]),
                      # only where on: the specs (and identities) of configs without it stay as they were
                      **({"weight_norm": True} if s["model"].get("weight_norm") else {})},
            "train": train,
        }
        name = run_id(variant, depth, width, density) + (f"_e{epochs}" if epochs is not None else "")
        if sequence:
            names = list(_sequence_splits(s))
            splits = [["in_distribution", _sequence_path(s, names[0])]] + [[n, _sequence_path(s, n)]
                                                                            for n in names[1:]]
            train_data = _sequence_path(s, names[0])
            op_eval = s["studies"]["other_paradigm"]["eval"]
            evaluation = {"max_iters": op_eval["max_iters"], "n_examples": op_eval["n_examples"],
                          "batch_size": s["eval"]["batch_size"]}
            if "n_in_distribution" in op_eval:  # only where given: the other specs stay as they were
                evaluation["n_in_distribution"] = op_eval["n_in_distribution"]
        else:
            splits = [["validation", _vision_path(s, "train")], ["test", _vision_path(s, "test")]]
            train_data = _vision_path(s, "train")
            evaluation = {"batch_size": s["eval"]["batch_size"]}
        deq_eval = {"solver": deq["solver"], "max_iter": depth, "tol": deq["tol"]} if variant in DEQ else None
        eval_spec = {**spec, "run": name, "eval": {**evaluation, "deq": deq_eval}, "splits": splits,
                     "studies": sorted(studies, key=STUDIES.index),
                     "match_densities": sorted(match_densities)}
        return Run(PAPER, task, name, seed, train_spec=spec, eval_spec=eval_spec, train_data=train_data,
                   eval_data=tuple(sorted({p for _, p in splits})))


def _seeds(section: dict, study: dict) -> list[int]:
    return study.get("seeds", section["seeds"])


def _depth_of(section: dict, variant: str, depth: int) -> int:
    """A DEQ has no depth: its budget is the solver's ``deq.max_iter``."""
    return section["deq"]["max_iter"] if variant in DEQ else depth


def runs(section: dict) -> list[Run]:
    grid = _Grid(section)
    task, st = vision_task(section), section["studies"]
    groups, weight_norm = section["model"]["groups"], section["model"].get("weight_norm", False)
    in_channels, classes = VISION[task]

    s = st["wt_vs_deq"]
    for v in s["variants"]:
        for seed in _seeds(section, s):
            grid.ask("wt_vs_deq", task, v, _depth_of(section, v, s["depth"]), s["width"], 1.0, seed)
        if v == "wt" and any(d in DEQ for d in s["variants"]):  # WT at the DEQs' forward budget too
            for seed in _seeds(section, s):
                grid.ask("wt_vs_deq", task, v, section["deq"]["max_iter"], s["width"], 1.0, seed)

    s = st["capacity"]
    for v in s["variants"]:
        for depth in s["depths"]:
            for width in s["widths"]:
                for seed in _seeds(section, s):
                    grid.ask("capacity", task, v, _depth_of(section, v, depth), width, 1.0, seed)

    s = st["sparse_masks"]
    for seed in _seeds(section, s):
        grid.ask("sparse_masks", task, "wt", s["depth"], s["width"], 1.0, seed)
        for d in s["densities"]:
            for v in s["variants"]:
                grid.ask("sparse_masks", task, v, s["depth"], s["width"], d, seed)
            target = active_parameters(s["width"], d, in_channels, classes, weight_norm=weight_norm)
            for v in s["matched"]:
                blocks = s["depth"] if v == "untied" else 1
                w = matched_width(target, groups, in_channels, classes, blocks, weight_norm)
                grid.ask("sparse_masks", task, v, s["depth"], w, 1.0, seed, match_density=d)

    s = st["design_guidelines"]
    for depth in s["depths"]:
        for width in s["widths"]:
            for d in s["densities"]:
                v = "wt" if d == 1 and s["variant"] in MASKED else s["variant"]  # density 1: no masks
                for seed in _seeds(section, s):
                    grid.ask("design_guidelines", task, v, _depth_of(section, v, depth), width, d, seed)

    s = st["memory_vs_depth"]
    for v in s["variants"]:
        for depth in s["depths"]:
            for seed in _seeds(section, s):
                grid.ask("memory_vs_depth", task, v, depth, s["width"], 1.0, seed, epochs=s["epochs"])

    s = st["other_paradigm"]
    for v in s["variants"]:
        d = s["density"] if v in MASKED else 1.0
        for seed in _seeds(section, s):
            grid.ask("other_paradigm", SEQUENCE_TASK, v, s["depth"], s["width"], d, seed)
    return grid.runs()


def item_runs(section: dict, item: str | None) -> list[Run]:
    """Every item (and the scorecard) reads all runs and picks its studies' by their names."""
    return runs(section)


def check(section: dict, where: str) -> None:
    """What the schema cannot say: widths divisible by the GroupNorm groups with two channels per
    group, milestones within the
    epochs, a download source for CIFAR, masked variants only where a density is given."""
    groups = section["model"]["groups"]
    st = section["studies"]

    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{where}: key `song2023.{key}` {why}")

    widths = [("studies.wt_vs_deq.width", st["wt_vs_deq"]["width"]),
              ("studies.sparse_masks.width", st["sparse_masks"]["width"]),
              ("studies.memory_vs_depth.width", st["memory_vs_depth"]["width"]),
              ("studies.other_paradigm.width", st["other_paradigm"]["width"])]
    widths += [("studies.capacity.widths", w) for w in st["capacity"]["widths"]]
    widths += [("studies.design_guidelines.widths", w) for w in st["design_guidelines"]["widths"]]
    for key, width in widths:
        if width % groups:
            fail(key, f"has width {width}, which the GroupNorm groups (`song2023.model.groups` = {groups}) do not "
                      "divide; use a multiple of the groups or change the groups.")
        if width < MIN_CHANNELS_PER_GROUP * groups:
            fail(key, f"has width {width}, below {MIN_CHANNELS_PER_GROUP} x the GroupNorm groups "
                      f"(`song2023.model.groups` = {groups}): a group of one channel normalizes it to a constant; use "
                      f"a width of at least {MIN_CHANNELS_PER_GROUP * groups} or fewer groups.")
    if vision_task(section) != "digits" and "cifar" not in section["data"]:
        fail("data.cifar.base_url", f"is required when `data.dataset` is {vision_task(section)}: the folder URL "
                                    "the archive is downloaded from.")
    for key, variants in (("studies.wt_vs_deq.variants", st["wt_vs_deq"]["variants"]),
                          ("studies.capacity.variants", st["capacity"]["variants"]),
                          ("studies.memory_vs_depth.variants", st["memory_vs_depth"]["variants"])):
        masked = [v for v in variants if v in MASKED]
        if masked:
            fail(key, f"lists {masked}: masked variants need a density; study them under "
                      "`song2023.studies.sparse_masks` or `design_guidelines`.")
    if st["design_guidelines"]["variant"] not in MASKED:
        fail("studies.design_guidelines.variant", f"is {st['design_guidelines']['variant']!r}: the grid's densities "
             f"need a masked variant ({', '.join(MASKED)}); density 1 cells are the dense wt.")
    deq_on_depth_axis = [v for v in st["capacity"]["variants"] if v in DEQ]
    if deq_on_depth_axis:
        fail("studies.capacity.variants", f"lists {deq_on_depth_axis}: a DEQ has no depth (its budget is "
             "`song2023.deq.max_iter`), so it has no place on the capacity study's depth axis.")
    if any(v not in MASKED for v in st["sparse_masks"]["variants"]):
        fail("studies.sparse_masks.variants", f"must list masked variants only ({', '.join(MASKED)}); the dense "
                                              "references are `matched`.")
    deq = section["deq"]
    if deq["pretrain_epochs"] and deq["pretrain_epochs"] >= section["train"]["epochs"]:
        fail("deq.pretrain_epochs", f"is {deq['pretrain_epochs']}, not below `song2023.train.epochs` "
                                    f"({section['train']['epochs']}): the DEQs would never train as DEQs; lower it.")
    for m in section["train"]["lr_milestones"]:
        if m >= section["train"]["epochs"]:
            fail("train.lr_milestones", f"has {m}, not below `song2023.train.epochs` ({section['train']['epochs']}).")
    op = st["other_paradigm"]
    check_lr_milestones({**section["train"], **op["train"]}, lambda key, why: fail(f"studies.other_paradigm.{key}", why),
                        inherited="" if "lr_milestones" in op["train"] else "song2023.train.lr_milestones")
    check_eval_counts(op["data"], op["eval"], lambda key, why: fail(f"studies.other_paradigm.{key}", why),
                      "song2023.studies.other_paradigm")
    bits = op["data"]["harder_bits"]
    if len(set(bits)) != len(bits) or min(bits) <= op["data"]["train_bits"]:
        fail("studies.other_paradigm.data.harder_bits", f"is {bits}: each harder length must be listed once and be "
             f"longer than `train_bits` ({op['data']['train_bits']}); one of the same length would replace the "
             "training data.")
    if op["eval"]["max_iters"] < op["depth"]:
        fail("studies.other_paradigm.eval.max_iters", "must be at least the study's depth (the sweep covers the "
                                                       "training budget).")
    if len(set(section["seeds"])) != len(section["seeds"]):
        fail("seeds", "repeats a seed.")


# ---------------------------------------------------------------- the compute plan's work model

# Training and test images of the vision datasets (digits: scikit-learn's 1,797, split 75 / 25).
IMAGES = {"digits": (1347, 450), "cifar10": (50000, 10000), "cifar100": (50000, 10000)}
POSITIONS = {"digits": 8 * 8, "cifar10": 32 * 32, "cifar100": 32 * 32}


def work(section: dict, run: Run) -> dict[str, float]:
    """How much work a run's jobs do, for the compute plan (``plan.py``), in the units of ``work.py``:
    batched steps, each a fixed overhead plus examples × the block's two convolutions (2 × width² per
    position). A run takes ``depth`` steps (a DEQ: its solver budget, and as much again for the
    implicit backward solve); training runs them forward and backward (counted as two more) over
    every batch of every epoch, evaluation forward over the test images (prefix sums: each split at
    the test-time budget); ``activations`` (batch × steps × width × positions) is what backprop keeps."""
    spec = run.eval_spec
    m, tr = spec["model"], spec["train"]
    per_position = 2 * m["width"] ** 2
    if run.task == SEQUENCE_TASK:
        data = {path: d.params for path, d in datasets(section).items()}
        positions, n_train = data[run.train_data]["n_bits"], data[run.train_data]["count"]
        n_train *= spec["data"]["train_fraction"]
        ev = spec["eval"]
        evaluate = sum(batched_steps(min(data[p]["count"], ev["n_examples"]), ev["batch_size"], ev["max_iters"],
                                     per_position * data[p]["n_bits"]) for p in run.eval_data)
    else:
        positions = POSITIONS[run.task]
        n_images, n_test = IMAGES[run.task]
        n_train = n_images * spec["data"]["train_fraction"]
        evaluate = sum(batched_steps(n, spec["eval"]["batch_size"], m["depth"], per_position * positions)
                       for n in (n_test, n_images - n_train))  # the test part and the validation split
    train = tr["epochs"] * batched_steps(n_train, tr["batch_size"], 3 * m["depth"], per_position * positions)
    return {"train": train, "evaluate": evaluate,
            "activations": tr["batch_size"] * m["depth"] * m["width"] * positions}
