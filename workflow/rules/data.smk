# Raw downloads (each checked against its SHA-256), then seeded dataset generation: one file per
# (paper, task, split, identity of its generator parameters), written once.

# On a cluster the download runs where snakemake runs: compute nodes often have no network.
localrules:
    download,


rule download:
    output:
        "data/raw/{source}/{file}",
    params:
        url=lambda w: download_of(w).url,
        sha256=lambda w: download_of(w).sha256,
    log:
        "logs/data/raw/{source}/{file}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    shell:
        "python -m implicit_repro download --url {params.url:q} --sha256 {params.sha256} "
        "--out {output:q} 2> {log}"


rule generate:
    input:
        lambda w: as_ancient(dataset_of(w).raw),  # checked against their SHA-256 when downloaded
    output:
        "data/{paper}/{task}/{split}-{id}.pt",
    params:
        generator=lambda w: as_json(dataset_of(w).params),
    log:
        "logs/data/{paper}/{task}/{split}-{id}.log",
    benchmark:
        "logs/benchmark/data/{paper}/{task}/{split}-{id}.tsv"
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
