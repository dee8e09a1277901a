# Raw downloads (MNIST, when digits read it), then seeded dataset generation: one file per
# (paper, task, split), written once.

# On a cluster the download runs where snakemake runs: compute nodes often have no network.
localrules:
    download_mnist,


# The four MNIST files, each kept only if its SHA-256 is the one in the config. Requested only when
# `anil2022.digits.data.source` is mnist (the paper scale): the digits splits then take them as input.
rule download_mnist:
    output:
        mnist_files(),
    params:
        base_url=lambda w: mnist_settings()["base_url"],
        checksums=lambda w: json.dumps(mnist_settings()["checksums"], sort_keys=True),
        out_dir=lambda w, output: str(Path(output[0]).parent),
    log:
        "logs/data/raw/mnist.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    shell:
        "python -m implicit_repro download-mnist --base-url {params.base_url:q} "
        "--checksums {params.checksums:q} --out-dir {params.out_dir:q} 2> {log}"


rule generate:
    input:
        generate_inputs,
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
