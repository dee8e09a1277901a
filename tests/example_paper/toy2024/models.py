"""toy2024's model: the shared prefix-sum cell, seeded by the job."""

from __future__ import annotations

import torch

from implicit_repro.models import EquilibriumModel, build_model
from implicit_repro.seeding import derive_seed


def build(spec: dict) -> EquilibriumModel:
    torch.manual_seed(derive_seed(spec["paper"], spec["task"], "init", spec["seed"]))
    return build_model(spec["task"], **spec["model"])
