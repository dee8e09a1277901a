# One evaluation job per trained model: accuracy per test-time iteration, residuals, AA.


rule evaluate:
    input:
        model="checkpoints/{paper}/{task}/{intervention}/{gradient}/seed{seed}/model.pt",
        splits=lambda w: sorted(set(eval_splits(w.paper, w.task).values())),
    output:
        "results/{paper}/{task}/{intervention}/{gradient}/seed{seed}/metrics.json",
    params:
        spec=as_json(eval_spec),
    log:
        "logs/evaluate/{paper}/{task}/{intervention}/{gradient}/seed{seed}.log",
    benchmark:
        "logs/benchmark/evaluate/{paper}/{task}/{intervention}/{gradient}/seed{seed}.tsv"
    conda:
        ENV
    threads: RES["evaluate"]["threads"]
    resources:
        mem_mb=RES["evaluate"]["mem_mb"],
        runtime=RES["evaluate"]["runtime"],
    shell:
        "python -m implicit_repro evaluate --spec {params.spec:q} --model {input.model} "
        "--out {output} --threads {threads} 2> {log}"


rule evaluate_all:
    input:
        evaluate_outputs(),
