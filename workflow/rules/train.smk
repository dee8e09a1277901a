# One training job per run of a paper's grid. Resumes from its epoch checkpoint.


rule train:
    input:
        data=lambda w: run_of(w).train_data,
    output:
        model="checkpoints/{paper}/{task}/{run}/seed{seed}/model.pt",
        log="checkpoints/{paper}/{task}/{run}/seed{seed}/train_log.jsonl",
    params:
        spec=lambda w: as_json(job_spec(run_of(w).train_spec)),
        device=CFG["device"],
    log:
        "logs/train/{paper}/{task}/{run}/seed{seed}.log",
    benchmark:
        "logs/benchmark/train/{paper}/{task}/{run}/seed{seed}.tsv"
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
