"""The on-disk dataset format: one torch file of uint8/float tensors plus a small metadata dict."""

from __future__ import annotations

import os

import torch

from implicit_repro.errors import DatasetError
from implicit_repro.io import load_torch, save_torch

REQUIRED = ("inputs", "targets", "meta")


def save_dataset(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    save_torch(path, {**tensors, "meta": meta})


def load_dataset(path: str | os.PathLike) -> dict:
    data = load_torch(path, "dataset", DatasetError, REQUIRED)
    if len(data["inputs"]) != len(data["targets"]):
        raise DatasetError(f"{path}: inputs and targets differ in length; delete it and regenerate it.")
    return data
