# One training job per (paper, task, intervention, seed). Resumes from its epoch checkpoint.


rule train:
    input:
        data=lambda w: train_split_path(w.paper, w.task),
    output:
        model="checkpoints/{paper}/{task}/{intervention}/{gradient}/seed{seed}/model.pt",
        log="checkpoints/{paper}/{task}/{intervention}/{gradient}/seed{seed}/train_log.jsonl",
    params:
        spec=as_json(train_spec),
        device=CFG["device"],
    log:
        "logs/train/{paper}/{task}/{intervention}/{gradient}/seed{seed}.log",
    benchmark:
        "logs/benchmark/train/{paper}/{task}/{intervention}/{gradient}/seed{seed}.tsv"
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
