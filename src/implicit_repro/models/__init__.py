"""Equilibrium models: a weight-tied cell f(z, x) with input injection, and a readout head."""

from implicit_repro.models.equilibrium import EquilibriumModel, build_model

__all__ = ["EquilibriumModel", "build_model"]
