# One evaluation job per trained model, named <key>-<identity of its spec and checkpoint>; what it
# measures is the paper's (papers/<paper>/evaluate.py).


rule evaluate:
    input:  # named by identity, compared by name: see as_ancient
        model=lambda w: ancient(evaluated_run(w).path("checkpoints", "model.pt")),
        train_log=lambda w: ancient(evaluated_run(w).path("checkpoints", "train_log.jsonl")),
        splits=lambda w: as_ancient(evaluated_run(w).eval_data),
    output:
        "results/{paper}/{task}/{run}/seed{seed}-{id}/metrics.json",
    params:
        spec=lambda w: as_json(evaluated_run(w).eval_job),
        device=CFG["device"],
    log:
        "logs/evaluate/{paper}/{task}/{run}/seed{seed}-{id}.log",
    benchmark:
        "logs/benchmark/evaluate/{paper}/{task}/{run}/seed{seed}-{id}.tsv"
    conda:
        ENV
    threads: RES["evaluate"]["threads"]
    resources:
        mem_mb=RES["evaluate"]["mem_mb"],
        runtime=RES["evaluate"]["runtime"],
        gpu=RES["evaluate"].get("gpu", 0),
    shell:
        "python -m implicit_repro evaluate --spec {params.spec:q} --model {input.model} "
        "--train-log {input.train_log} --out {output} --threads {threads} --device {params.device} 2> {log}"


rule evaluate_all:
    input:
        evaluate_outputs(),
