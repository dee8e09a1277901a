"""song2023's dataset splits.

- ``digits``: scikit-learn's bundled 8x8 digits (offline, no blur), its fixed train / test parts
  (``data.digits.load_sklearn_digits``), pixels in [0, 1], shape (N, 1, 8, 8).
- ``cifar10`` / ``cifar100``: the official binary archives (``data.cifar``), verified against their
  SHA-256 before they are opened; stored as uint8 (N, 3, 32, 32) and normalized per batch by the task.
- ``prefix_sums``: anil2022's generator (``data.prefix_sums``), seeded by this paper's split names.
"""

from __future__ import annotations

import torch

from implicit_repro.errors import DatasetError


def generate(task: str, params: dict, g: torch.Generator) -> dict:
    params = dict(params)
    if task == "prefix_sums":
        from implicit_repro.data.registry import generate as generate_task

        return generate_task(task, params, g)
    source = params.get("source")
    if task == "digits" and source == "sklearn":
        from implicit_repro.data.digits import load_sklearn_digits

        images, labels = load_sklearn_digits(params["part"])
        return {"inputs": images.unsqueeze(1), "targets": labels}
    if task in ("cifar10", "cifar100") and source == task:
        from implicit_repro.data.cifar import read_cifar

        images, labels = read_cifar(params["archive"], task, params["part"], params["sha256"])
        return {"inputs": images, "targets": labels}
    raise DatasetError(f"song2023 has no dataset {task!r} from source {source!r}; known: digits (sklearn), "
                       "cifar10, cifar100, prefix_sums. Set song2023.data.dataset in config/config.yaml.")
