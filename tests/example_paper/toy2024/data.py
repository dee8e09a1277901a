"""toy2024's dataset splits: the shared prefix-sum generator."""

from implicit_repro.data.registry import generate

__all__ = ["generate"]
