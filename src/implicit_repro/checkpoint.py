"""Checkpoint files: the final model of a training job and its resumable epoch state."""

from __future__ import annotations

import os

from implicit_repro.errors import CheckpointError
from implicit_repro.io import load_torch, save_torch

MODEL_KEYS = ("model", "status", "spec")


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    save_torch(path, payload)


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = MODEL_KEYS) -> dict:
    ckpt = load_torch(path, "checkpoint", CheckpointError)
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path}: not a checkpoint of this pipeline (missing {', '.join(missing)}). "
            f"Delete it and rerun `snakemake --cores 2 {path}` to retrain."
        )
    return ckpt
