"""Every command the project prints works as printed: parsed by Snakemake's own argument parser, the
target is a target and --config holds only name=value pairs. (`--config` takes every word after it,
so `snakemake --cores 2 --config scale=smoke <file>` fails with "Invalid config definition".)"""

import re
import shlex

import pytest
from snakemake.cli import get_argument_parser, parse_config

from conftest import ROOT
from implicit_repro.io import SCALE_ENV, regenerate_command

TARGET = "data/anil2022/prefix_sums/bits8-0123abcd.pt"


def parsed(command: str):
    argv = shlex.split(command)
    assert argv[0] == "snakemake", command
    args = get_argument_parser().parse_args(argv[1:])
    return args, parse_config(args.config or [])


@pytest.mark.parametrize("scale", ["smoke", None])
def test_the_regenerate_command_parses_with_its_target_and_its_scale(monkeypatch, scale):
    if scale:
        monkeypatch.setenv(SCALE_ENV, scale)
    else:
        monkeypatch.delenv(SCALE_ENV, raising=False)
    command = regenerate_command(TARGET).replace("<the scale you ran>", "small")  # the reader fills it in
    args, cfg = parsed(command)
    assert set(args.targets) == {TARGET} and cfg == {"scale": scale or "small"}


def test_the_wrong_order_is_what_this_guards_against():
    with pytest.raises(ValueError, match="Invalid config definition"):
        parsed(f"snakemake --cores 2 --config scale=smoke {TARGET}")


def test_every_snakemake_command_of_the_readme_parses():
    """Commands in the README's code blocks and `backquotes`; placeholders (<...>) get a name."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"`(snakemake [^`\n]+)`", text) + re.findall(r"^(snakemake [^\n#]+)", text, re.M)
    assert len(found) >= 5
    for command in found:
        command = re.sub(r"<[^>]+>", "x", command.strip())
        args, _ = parsed(command)
        assert all("=" not in t for t in args.targets), command
