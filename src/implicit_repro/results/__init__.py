"""Aggregation of per-job metrics into the items of paper_results/ and figures/."""
