# Items of paper_results/ and figures/, and the index + scorecard README. An item's id and kind come
# from config/papers.yaml, its builder from the paper's package.

# On a cluster these aggregations (seconds each, pandas and matplotlib) run where snakemake runs:
# a batch job's queueing and start-up would cost more than the work.
localrules:
    table,
    figure,
    readme,


rule table:
    input:
        metrics=lambda w: item_metrics(w.paper, w.item),
        train_logs=lambda w: item_train_logs(w.paper, w.item),
        papers=PAPERS_FILE,
    output:
        report("paper_results/{paper}/{item}.csv", caption="../report/item.rst", category=item_category,
               subcategory=item_subcategory, labels=item_labels),
        "paper_results/{paper}/{item}.md",
        "paper_results/{paper}/{item}.tex",
    wildcard_constraints:
        item="table[a-z0-9_]*",
    params:
        scale=SCALE,
        caption=item_caption,
    log:
        "logs/report/{paper}/{item}.log",
    benchmark:
        "logs/benchmark/report/{paper}/{item}.tsv"
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report --paper {wildcards.paper} {wildcards.item} --metrics {input.metrics} "
        "--train-logs {input.train_logs} --papers {input.papers} --scale {params.scale} --out-stem paper_results/{wildcards.paper}/{wildcards.item} "
        "2> {log}"


rule figure:
    input:
        metrics=lambda w: item_metrics(w.paper, w.item),
        train_logs=lambda w: item_train_logs(w.paper, w.item),
        papers=PAPERS_FILE,
    output:
        report("figures/{paper}/{item}.png", caption="../report/item.rst", category=item_category,
               subcategory=item_subcategory, labels=item_labels),
        "figures/{paper}/{item}.pdf",
    wildcard_constraints:
        item="fig_[a-z0-9_]+",
    params:
        scale=SCALE,
        caption=item_caption,
    log:
        "logs/report/{paper}/{item}.log",
    benchmark:
        "logs/benchmark/report/{paper}/{item}.tsv"
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report --paper {wildcards.paper} {wildcards.item} --metrics {input.metrics} "
        "--train-logs {input.train_logs} --papers {input.papers} --scale {params.scale} --out-stem figures/{wildcards.paper}/{wildcards.item} "
        "2> {log}"


rule readme:
    input:
        item_files=[path for paper, item in all_items() for path in item_files(paper, item)],
        metrics=[path for paper in PAPERS for path in item_metrics(paper, None)],
        train_logs=[path for paper in PAPERS for path in item_train_logs(paper, None)],
        papers=PAPERS_FILE,
    output:
        readme=report("paper_results/README.md", caption="../report/readme.rst", category=SCORECARD_CATEGORY,
                      labels={"file": "README.md (index, scorecard, choices)"}),
        scorecard=report("paper_results/scorecard.csv", caption="../report/scorecard.rst",
                         category=SCORECARD_CATEGORY, labels={"file": "scorecard.csv"}),
        summary="paper_results/scorecard_summary.md",
    params:
        scale=SCALE,
        produced=[f"{paper}/{item}" for paper, item in all_items()],
        config=as_json({k: v for k, v in CFG.items() if k != "resources"}),
    log:
        "logs/report/readme.log",
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report readme --metrics {input.metrics} --train-logs {input.train_logs} "
        "--papers {input.papers} "
        "--scale {params.scale} --produced {params.produced} --config {params.config:q} "
        "--out-stem paper_results/README 2> {log}"


rule report:
    input:
        report_outputs(),
