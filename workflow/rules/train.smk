# One training job per run of a paper's grid, named <key>-<identity of its spec and data>.
# Resumes from its epoch checkpoint.


rule train:
    input:
        data=lambda w: ancient(trained_run(w).train_data),  # named by identity: see as_ancient
    output:
        model="checkpoints/{paper}/{task}/{run}/seed{seed}-{id}/model.pt",
        log="checkpoints/{paper}/{task}/{run}/seed{seed}-{id}/train_log.jsonl",
    params:
        spec=lambda w: as_json(trained_run(w).train_job),
        device=CFG["device"],
    log:
        "logs/train/{paper}/{task}/{run}/seed{seed}-{id}.log",
    benchmark:
        "logs/benchmark/train/{paper}/{task}/{run}/seed{seed}-{id}.tsv"
    conda:
        ENV
    threads: RES["train"]["threads"]
    resources:
        mem_mb=RES["train"]["mem_mb"],
        runtime=RES["train"]["runtime"],
        gpu=RES["train"].get("gpu", 0),
    shell:
        "python -m implicit_repro train --spec {params.spec:q} --data {input.data} "
        "--model-out {output.model} --log-out {output.log} --threads {threads} "
        "--device {params.device} 2> {log}"


rule train_all:
    input:
        train_outputs(),
