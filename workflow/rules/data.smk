# Seeded dataset generation: one file per (paper, task, split), written once.


rule generate:
    output:
        "data/{paper}/{task}/{split}.pt",
    params:
        generator=lambda w: json.dumps(split_params(w.paper, w.task)[w.split], sort_keys=True),
    log:
        "logs/data/{paper}/{task}/{split}.log",
    benchmark:
        "logs/benchmark/data/{paper}/{task}/{split}.tsv"
    conda:
        ENV
    threads: RES["data"]["threads"]
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    shell:
        "python -m implicit_repro generate --paper {wildcards.paper} --task {wildcards.task} "
        "--split {wildcards.split} --params {params.generator:q} --out {output} 2> {log}"


rule data:
    input:
        data_outputs(),
