# One evaluation job per trained model: accuracy per test-time iteration, residuals, AA.


rule evaluate:
    input:
        model="checkpoints/{paper}/{task}/{intervention}/seed{seed}/model.pt",
        splits=lambda w: sorted(set(eval_splits(w.paper, w.task).values())),
    output:
        "results/{paper}/{task}/{intervention}/seed{seed}/metrics.json",
    params:
        spec=as_json(eval_spec),
    log:
        "logs/evaluate/{paper}/{task}/{intervention}/seed{seed}.log",
    benchmark:
        "logs/benchmark/evaluate/{paper}/{task}/{intervention}/seed{seed}.tsv"
    threads: RES["evaluate"]["threads"]
    resources:
        mem_mb=RES["evaluate"]["mem_mb"],
        runtime=RES["evaluate"]["runtime"],
    shell:
        "python -m implicit_repro evaluate --spec {params.spec:q} --model {input.model} "
        "--out {output} --threads {threads} 2> {log}"


def evaluate_outputs():
    return [path for task in CFG["anil2022"] for path in metrics_files("anil2022", task)]


rule evaluate_all:
    input:
        evaluate_outputs(),
