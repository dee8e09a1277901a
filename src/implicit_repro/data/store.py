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
    data = load_torch(path, "dataset", DatasetError)
    missing = [k for k in REQUIRED if not isinstance(data, dict) or k not in data]
    if missing:
        raise DatasetError(
            f"{path}: not a dataset of this pipeline (missing {', '.join(missing)}). "
            f"Delete it and rerun `snakemake --cores 2 {path}`."
        )
    if len(data["inputs"]) != len(data["targets"]):
        raise DatasetError(f"{path}: inputs and targets differ in length; delete it and regenerate it.")
    return data
