# One evaluation job per trained model; what it measures is the paper's (papers/<paper>/evaluate.py).


rule evaluate:
    input:
        model="checkpoints/{paper}/{task}/{run}/seed{seed}/model.pt",
        train_log="checkpoints/{paper}/{task}/{run}/seed{seed}/train_log.jsonl",
        splits=lambda w: run_of(w).eval_data,
    output:
        "results/{paper}/{task}/{run}/seed{seed}/metrics.json",
    params:
        spec=lambda w: as_json(job_spec(run_of(w).eval_spec)),
    log:
        "logs/evaluate/{paper}/{task}/{run}/seed{seed}.log",
    benchmark:
        "logs/benchmark/evaluate/{paper}/{task}/{run}/seed{seed}.tsv"
    conda:
        ENV
    threads: RES["evaluate"]["threads"]
    resources:
        mem_mb=RES["evaluate"]["mem_mb"],
        runtime=RES["evaluate"]["runtime"],
    shell:
        "python -m implicit_repro evaluate --spec {params.spec:q} --model {input.model} "
        "--train-log {input.train_log} --out {output} --threads {threads} 2> {log}"


rule evaluate_all:
    input:
        evaluate_outputs(),
