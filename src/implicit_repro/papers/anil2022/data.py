"""anil2022's dataset splits: the shared task generators (``implicit_repro.data.registry``)."""

from __future__ import annotations

from implicit_repro.data.registry import generate

__all__ = ["generate"]
