# Items of paper_results/ and figures/, and the index + scorecard README.

rule anil2022_item:
    input:
        metrics=lambda w: item_metrics(w.item),
        papers=PAPERS_FILE,
    output:
        "paper_results/anil2022/{item}.csv",
        "paper_results/anil2022/{item}.md",
        "paper_results/anil2022/{item}.tex",
    wildcard_constraints:
        item="table[0-9]*_[a-z0-9_]+",
    params:
        scale=SCALE,
    log:
        "logs/report/anil2022/{item}.log",
    benchmark:
        "logs/benchmark/report/anil2022/{item}.tsv"
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report {wildcards.item} --metrics {input.metrics} --papers {input.papers} "
        "--scale {params.scale} --out-stem paper_results/anil2022/{wildcards.item} 2> {log}"


rule anil2022_figure:
    input:
        metrics=lambda w: item_metrics(w.item),
    output:
        "figures/anil2022/{item}.png",
        "figures/anil2022/{item}.pdf",
    wildcard_constraints:
        item="fig_[a-z0-9_]+",
    params:
        scale=SCALE,
    log:
        "logs/report/anil2022/{item}.log",
    benchmark:
        "logs/benchmark/report/anil2022/{item}.tsv"
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report {wildcards.item} --metrics {input.metrics} "
        "--scale {params.scale} --out-stem figures/anil2022/{wildcards.item} 2> {log}"


rule readme:
    input:
        item_files=[path for item in ANIL2022_ITEMS for path in item_outputs(item)],
        metrics=metrics_of(grid_jobs),
        papers=PAPERS_FILE,
    output:
        readme="paper_results/README.md",
        scorecard="paper_results/scorecard.csv",
    params:
        scale=SCALE,
        produced=[f"anil2022/{item}" for item in ANIL2022_ITEMS],
        config=json.dumps({k: v for k, v in CFG.items() if k != "resources"}, sort_keys=True),
    log:
        "logs/report/readme.log",
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report readme --metrics {input.metrics} --papers {input.papers} "
        "--scale {params.scale} --produced {params.produced} --config {params.config:q} "
        "--out-stem paper_results/README 2> {log}"


rule report:
    input:
        report_outputs(),
