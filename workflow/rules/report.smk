# Items of paper_results/ and figures/, and the index + scorecard README. An item's id and kind come
# from config/papers.yaml, its builder from the paper's package.

# On a cluster these aggregations (seconds each, pandas and matplotlib) run where snakemake runs:
# a batch job's queueing and start-up would cost more than the work.
localrules:
    record_inputs,
    table,
    figure,
    readme,


# The record of what an item (or the README) is built from, named by its identity and read by the
# item's rule: a config whose runs differ names another record, which is missing, so the item is
# rebuilt; a pulled clone has the committed records, so nothing is (results/inputs.py).
rule record_inputs:
    output:
        f"{ITEMS}paper_results/inputs/{{record}}-{{id}}.json",
    wildcard_constraints:
        record=r"README|%s/[a-z0-9_]+" % PAPER_ID,
    params:
        record=lambda w, output: known_record(output[0]),
    log:
        f"logs/report/{SCALE}/inputs/{{record}}-{{id}}.log",
    run:
        from implicit_repro.results import inputs

        inputs.write(output[0], params.record)


rule table:
    input:
        metrics=lambda w: as_ancient(item_metrics(w.paper, w.item)),
        train_logs=lambda w: as_ancient(item_train_logs(w.paper, w.item)),
        inputs=lambda w: ancient(inputs_record(w.paper, w.item)),  # see rule record_inputs
        papers=PAPERS_FILE,
    output:
        report(f"{ITEMS}paper_results/{{paper}}/{{item}}.csv", caption="../report/item.rst", category=item_category,
               subcategory=item_subcategory, labels=item_labels),
        f"{ITEMS}paper_results/{{paper}}/{{item}}.md",
        f"{ITEMS}paper_results/{{paper}}/{{item}}.tex",
    wildcard_constraints:
        item="table[a-z0-9_]*",
    params:
        scale=SCALE,
        caption=item_caption,
        stem=lambda w, output: output[0].rsplit(".", 1)[0],
    log:
        f"logs/report/{SCALE}/{{paper}}/{{item}}.log",
    benchmark:
        f"logs/benchmark/report/{SCALE}/{{paper}}/{{item}}.tsv"
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report --paper {wildcards.paper} {wildcards.item} --metrics {input.metrics} "
        "--train-logs {input.train_logs} --papers {input.papers} --scale {params.scale} --out-stem {params.stem} "
        "2> {log}"


rule figure:
    input:
        metrics=lambda w: as_ancient(item_metrics(w.paper, w.item)),
        train_logs=lambda w: as_ancient(item_train_logs(w.paper, w.item)),
        inputs=lambda w: ancient(inputs_record(w.paper, w.item)),  # see rule record_inputs
        papers=PAPERS_FILE,
    output:
        report(f"{ITEMS}figures/{{paper}}/{{item}}.png", caption="../report/item.rst", category=item_category,
               subcategory=item_subcategory, labels=item_labels),
        f"{ITEMS}figures/{{paper}}/{{item}}.pdf",
    wildcard_constraints:
        item="fig_[a-z0-9_]+",
    params:
        scale=SCALE,
        caption=item_caption,
        stem=lambda w, output: output[0].rsplit(".", 1)[0],
    log:
        f"logs/report/{SCALE}/{{paper}}/{{item}}.log",
    benchmark:
        f"logs/benchmark/report/{SCALE}/{{paper}}/{{item}}.tsv"
    conda:
        ENV
    threads: RES["report"]["threads"]
    resources:
        mem_mb=RES["report"]["mem_mb"],
        runtime=RES["report"]["runtime"],
    shell:
        "python -m implicit_repro report --paper {wildcards.paper} {wildcards.item} --metrics {input.metrics} "
        "--train-logs {input.train_logs} --papers {input.papers} --scale {params.scale} --out-stem {params.stem} "
        "2> {log}"


rule readme:
    input:
        item_files=as_ancient(path for paper, item in all_items() for path in item_files(paper, item)),
        metrics=as_ancient(readme_inputs()["metrics"]),
        train_logs=as_ancient(readme_inputs()["train_logs"]),
        inputs=ancient(readme_inputs_record()),
        papers=PAPERS_FILE,
    output:
        readme=report(f"{ITEMS}paper_results/README.md", caption="../report/readme.rst", category=SCORECARD_CATEGORY,
                      labels={"file": "README.md (index, scorecard, choices)"}),
        scorecard=report(f"{ITEMS}paper_results/scorecard.csv", caption="../report/scorecard.rst",
                         category=SCORECARD_CATEGORY, labels={"file": "scorecard.csv"}),
        summary=f"{ITEMS}paper_results/scorecard_summary.md",
    params:
        scale=SCALE,
        produced=readme_inputs()["produced"],
        config=as_json(readme_inputs()["config"]),
        stem=lambda w, output: output.readme.rsplit(".", 1)[0],
    log:
        f"logs/report/{SCALE}/readme.log",
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
        "--out-stem {params.stem} 2> {log}"


rule report:
    input:
        report_outputs(),
