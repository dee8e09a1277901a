"""The HTML replication report (`snakemake --report report.html`) at smoke scale: it builds, holds
the scorecard first and every item of both papers, each captioned with its scale."""

import re

import pytest
import yaml

from conftest import ROOT, SMOKE, run, tool

pytestmark = pytest.mark.slow


def test_the_html_report_holds_the_scorecard_and_every_item(smoke_run, tmp_path):
    html = tmp_path / "report.html"
    run([tool("snakemake"), *SMOKE, "--report", str(html)], cwd=smoke_run)
    text = html.read_text()
    papers = yaml.safe_load((ROOT / "config/papers.yaml").read_text())
    for paper, facts in papers.items():
        for item, meta in facts["items"].items():
            name = f"{item}.{'csv' if meta['kind'] == 'table' else 'png'}"
            assert name in text, name
        assert f"{paper}: {facts['title']}" in text  # the paper's category
    assert "1. Scorecard" in text and "scorecard.csv" in text
    assert re.search(r"Scale: (<strong>|\*\*)smoke", text)  # every caption says its scale
