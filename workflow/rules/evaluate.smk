# Evaluation jobs, named <key>-<identity of its spec and checkpoint>; what they measure is the paper's
# (papers/<paper>/evaluate.py). `resources.evaluate.models_per_job` > 1 evaluates the seeds of one point
# of the design space together, in one process (batches.py: a job pays Python's and torch's start once).


EVALUATE = "python -m implicit_repro evaluate {params.models} --threads {threads} --device {params.device} 2> {log}"


# One model per job: a batch of one.
rule evaluate:
    input:  # named by identity, compared by name: see as_ancient
        model=lambda w: ancient(checkpoint_of(evaluated_run(w))),
        train_log=lambda w: ancient(train_log_of(evaluated_run(w))),
        splits=lambda w: as_ancient(evaluated_run(w).eval_data),
    output:
        "results/{paper}/{task}/{run}/seed{seed}-{id}/metrics.json",
    params:
        models=lambda w: evaluate_arguments([evaluated_run(w)]),
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
        EVALUATE


# Several models per job: one rule per job, as its outputs share no wildcard. Snakemake prefers a rule
# without wildcards to `evaluate` for the same file, so each of these files is made here (a metrics
# file named on the command line evaluates its whole batch).
for batch in EVAL_BATCHES:
    if len(batch.runs) == 1:
        continue

    rule:
        name:
            batch.rule_name
        input:
            model=as_ancient(checkpoints_of(batch.runs)),
            train_log=as_ancient(train_logs_of(batch.runs)),
            splits=as_ancient(sorted({p for r in batch.runs for p in r.eval_data})),
        output:
            metrics_of(batch.runs),
        params:
            models=evaluate_arguments(batch.runs),
            device=CFG["device"],
        log:
            f"logs/evaluate/{batch.stem}.log",
        benchmark:
            f"logs/benchmark/evaluate/{batch.stem}.tsv"
        conda:
            ENV
        threads: RES["evaluate"]["threads"]
        resources:
            mem_mb=RES["evaluate"]["mem_mb"],
            runtime=RES["evaluate"]["runtime"] * len(batch.runs),
            gpu=RES["evaluate"].get("gpu", 0),
        shell:
            EVALUATE


rule evaluate_all:
    input:
        evaluate_outputs(),
