# Seeded dataset generation: one file per (paper, task, length), written once.


rule generate_prefix_sums:
    output:
        "data/{paper}/prefix_sums/bits{bits}.pt",
    params:
        n_strings=lambda w: task_cfg(w.paper, "prefix_sums")["data"]["count"],
    log:
        "logs/data/{paper}/prefix_sums/bits{bits}.log",
    benchmark:
        "logs/benchmark/data/{paper}/prefix_sums/bits{bits}.tsv"
    conda:
        ENV
    threads: RES["data"]["threads"]
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    shell:
        "python -m implicit_repro generate --paper {wildcards.paper} --task prefix_sums "
        "--bits {wildcards.bits} --count {params.n_strings} --out {output} 2> {log}"


rule data:
    input:
        data_outputs(),
