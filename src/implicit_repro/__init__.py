"""Replication pipeline for two papers on implicit (equilibrium and weight-tied) models."""

__version__ = "0.1.0"
