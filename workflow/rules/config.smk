# The configuration's entry: put the package on the path, and read config/config.yaml ourselves
# before Snakemake's `configfile:` does, so that a YAML syntax error names the file and the line
# (Snakemake's own message names neither). A bad config stops here with exit code 2 and one
# `error:` line, like every other bad input to the pipeline.
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
# Jobs run `python -m implicit_repro` from this checkout, whether or not the package is installed.
sys.path.insert(0, SRC)

# Keep torch out of the Snakefile's imports: a no-op rerun should take about a second.
from implicit_repro.config import read_yaml
from implicit_repro.errors import ConfigError

CONFIG_FILE = "config/config.yaml"


def stop_on_bad_config(exc):
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def stop_on_bad_target(message):
    """A target named on the command line that the current config does not make (an input function
    found it out): the same one line and exit code 2 as a bad config."""
    stop_on_bad_config(message)


def config_layers():
    """What Snakemake merged into `config`, lowest precedence first, with the name to blame."""
    layers = [(CONFIG_FILE, CONFIG_RAW)]
    layers += [(os.path.relpath(p), read_yaml(p)) for p in workflow.overwrite_configfiles]
    return layers + [("--config", dict(workflow.config_settings.config or {}))]


try:
    # (Where it is missing, Snakemake's `configfile:` says so, unless a --configfile replaces it.)
    CONFIG_RAW = read_yaml(CONFIG_FILE) if Path(CONFIG_FILE).exists() else {}
except ConfigError as exc:
    stop_on_bad_config(exc)
