"""The command line's JSON arguments, checked where they enter: a job's spec names what it lacks.

Snakemake writes every spec, so a malformed one means a hand-written command line or a rule edited
by hand; the message says which option and which key, and how to get a correct one.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from implicit_repro.errors import ReproError

FIX = "Let Snakemake write it: run the rule (`snakemake --cores 2 <output file>`), or print its command with `-n -p`."

# The keys the shared training loop needs in every spec (deeper keys as dotted paths) ...
TRAIN_KEYS = ("paper", "task", "seed", "train.epochs", "train.batch_size", "train.lr", "train.iters")
# ... and what every paper's evaluation reads besides.
EVAL_KEYS = (*TRAIN_KEYS, "eval", "splits")


@dataclass(frozen=True)
class Default:
    """A part of the training spec a paper gives only if it uses it: its dotted key, the value the
    training loop reads in its absence, and what that default means."""

    key: str
    default: Any
    meaning: str


# The rest of the training spec, with the defaults the loop reads where a paper writes none (a paper
# without interventions, DEQ gradients or a divergence threshold writes no such key, and its runs'
# identities hold only what it uses). A spec that gives a key trains exactly as before this table.
DEFAULTS = (
    Default("intervention", "baseline", "no intervention: a zero initial state, the fixed budget train.iters "
             "and no auxiliary loss (interventions.py)"),
    Default("intervention_params", {}, "read only by an intervention that needs them"),
    Default("task_params", {}, "the task's defaults (tasks.py)"),
    Default("data.train_fraction", 1.0, "the whole training file trains"),
    Default("train.gradient", "unrolled", "backpropagation through the unrolled iterations; a DEQ gradient "
             "(ift, phantom, jfb) also needs " + ", ".join(f"train.{k}" for k in ("solver", "tol", "phantom_steps",
                                                                                 "phantom_damping"))),
    Default("train.blowup_loss", None, "no threshold: only a non-finite loss marks the run diverged"),
    Default("train.weight_decay", 0.0, "no weight decay"),
    Default("train.warmup_epochs", 0, "no warm-up"),
    Default("train.lr_milestones", [], "no step decay"),
    Default("train.lr_gamma", 0.1, "the factor of each step decay"),
    Default("train.grad_clip", None, "no gradient clipping"),
    Default("train.pretrain_epochs", 0, "no unrolled warm-up; with k > 0 a DEQ's first k epochs train its block "
             "unrolled for train.pretrain_iters steps (no solver, no penalty)"),
)
# What a DEQ gradient reads besides (no defaults: a solver's settings are the paper's to choose).
DEQ_KEYS = ("train.solver", "train.tol", "train.phantom_steps", "train.phantom_damping")


def with_defaults(spec: dict) -> dict:
    """``spec`` with every part of ``DEFAULTS`` it lacks filled in (a copy; ``spec`` is left as it is)."""
    out = copy.deepcopy(spec)
    for option in DEFAULTS:
        *parents, leaf = option.key.split(".")
        node = out
        for name in parents:
            node = node.setdefault(name, {})
        node.setdefault(leaf, copy.deepcopy(option.default))
    return out


def require_train(spec: Any, option: str, keys: tuple[str, ...] = TRAIN_KEYS) -> dict:
    """``spec`` itself, once it has ``keys`` and, for a DEQ gradient, the solver's settings."""
    require(spec, keys, option)
    if spec["train"].get("gradient", "unrolled") != "unrolled":
        require(spec, DEQ_KEYS, option)
    return spec


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReproError(f"{option}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}). "
                         f"{FIX}") from None


def require(spec: Any, keys: tuple[str, ...], option: str) -> dict:
    """``spec`` itself, once every dotted key of ``keys`` is found in it."""
    if not isinstance(spec, dict):
        raise ReproError(f"{option}: expected a JSON object, got {type(spec).__name__}. {FIX}")
    for key in keys:
        node, parts = spec, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                missing = ".".join(parts[:depth + 1])  # the outermost key that is missing
                raise ReproError(f"{option}: the spec has no key `{missing}`. {FIX}")
            node = node[part]
    return spec


# ---------------------------------------------------------------- config checks every paper can use
# Each takes ``fail(subkey, why)``, the paper's grid.check's way to raise a ConfigError naming
# `<where>: key `<paper>.<...>.<subkey>``.

def check_lr_milestones(train: dict, fail, inherited: str = "") -> None:
    """Every milestone below ``train.epochs``: epochs count from 0, so a milestone at or past the
    number of epochs is a decay that never happens. ``inherited``: where the milestones come from
    when the section does not set them itself."""
    epochs = train["epochs"]
    for m in train.get("lr_milestones", []):
        if m >= epochs:
            source = f" (from `{inherited}`)" if inherited else ""
            fail("train.lr_milestones", f"has {m}{source}, not below `train.epochs` ({epochs}): epochs count from 0, "
                 f"so no decay would ever happen at {m}. Give milestones below {epochs} (or none: `lr_milestones: []`).")


def held_out(count: int, train_fraction: float) -> int:
    """How many examples of a training file of ``count`` the in-distribution test split holds: what
    ``train.train_split`` leaves after the training part."""
    return count - int(count * train_fraction)


def check_eval_counts(data: dict, evaluation: dict, fail, section: str) -> None:
    """``eval.n_examples`` (each harder split) and ``eval.n_in_distribution`` (default n_examples: the
    held-out part of the training file) no larger than the splits hold, from the ``data`` section's
    ``count``, ``harder_count`` (default count) and ``train_fraction``: an evaluation reads at most what
    a split has, and a larger value would be silently cut to it. ``section``: the dotted key of the
    section that holds ``data`` and ``eval``, for the fix the message prints."""
    n = evaluation["n_examples"]
    harder = data.get("harder_count", data["count"])
    if n > harder:
        fail("eval.n_examples", f"({n}) exceeds the {harder} examples of each harder split (`data.harder_count`, "
                                f"default `data.count`). Set `{section}.eval.n_examples: {harder}` or raise `data.harder_count`.")
    inside = held_out(data["count"], data["train_fraction"])
    n_in = evaluation.get("n_in_distribution", n)
    if n_in > inside:
        key = "eval.n_in_distribution" if "n_in_distribution" in evaluation else "eval.n_examples"
        fail(key, f"({n_in}) exceeds the {inside} in-distribution examples (the part of `data.count` = "
                  f"{data['count']} that `data.train_fraction` = {data['train_fraction']} leaves out of training). "
                  f"Set `{section}.eval.n_in_distribution: {inside}` (the in-distribution split's own count) or raise "
                  "`data.count`.")
