"""The command line's JSON arguments, checked where they enter: a job's spec names what it lacks.

Snakemake writes every spec, so a malformed one means a hand-written command line or a rule edited
by hand; the message says which option and which key, and how to get a correct one.
"""

from __future__ import annotations

import json
from typing import Any

from implicit_repro.errors import ReproError

FIX = "Let Snakemake write it: run the rule (`snakemake --cores 2 <output file>`), or print its command with `-n -p`."

# The keys the shared training loop reads from every spec (deeper keys as dotted paths).
TRAIN_KEYS = (
    "paper", "task", "intervention", "seed", "data.train_fraction", "model", "intervention_params",
    "train.epochs", "train.batch_size", "train.lr", "train.weight_decay", "train.warmup_epochs",
    "train.lr_milestones", "train.lr_gamma", "train.grad_clip", "train.iters", "train.blowup_loss",
    "train.gradient",
)
# ... and what every paper's evaluation reads besides.
EVAL_KEYS = (*TRAIN_KEYS, "eval", "splits")


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
