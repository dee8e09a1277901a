# Entry point: resolve and validate the config, include the rules of each stage, define `all`.
#   snakemake --cores 8                        # the `small` scale
#   snakemake --cores 2 --config scale=smoke   # a few minutes
#   snakemake --profile workflow/profiles/slurm --config scale=paper
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/config.smk"


configfile: CONFIG_FILE


# `snakemake --report report.html`: this text first, then the scorecard and every item, captioned.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# The metrics files are named too: they are git-ignored, so on a fresh clone the committed
# paper_results/ cannot make the run look complete; `snakemake` then regenerates everything.
rule all:
    default_target: True
    input:
        report_outputs(),
        evaluate_outputs(),
