"""Checkpoint files: the final model of a training job and its resumable epoch state."""

from __future__ import annotations

import os

from implicit_repro.errors import CheckpointError
from implicit_repro.io import load_torch, save_torch

MODEL_KEYS = ("model", "status", "spec")


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    save_torch(path, payload)


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = MODEL_KEYS) -> dict:
    return load_torch(path, "checkpoint", CheckpointError, required)
