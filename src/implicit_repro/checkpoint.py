"""Checkpoint files: the final model of a training job and its resumable epoch state."""

from __future__ import annotations

import os

from implicit_repro.errors import CheckpointError
from implicit_repro.io import load_torch, regenerate_command, save_torch

MODEL_KEYS = ("model", "status", "spec")


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    save_torch(path, payload)


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = MODEL_KEYS) -> dict:
    return load_torch(path, "checkpoint", CheckpointError, required)


def load_weights(model, state: dict, path: str | os.PathLike) -> None:
    """Load ``state`` into ``model``; a checkpoint of another model (another task, width or variant)
    is an error naming the file, not a state-dict traceback."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        first = (lines[1] if len(lines) > 1 else lines[0])[:160]  # line 0 only says "Error(s) in loading"
        raise CheckpointError(
            f"{path}: holds the weights of another model than this job's spec describes ({first}). It was "
            f"trained for another task, width or variant. Delete it and rerun `{regenerate_command(path)}`."
        ) from None
