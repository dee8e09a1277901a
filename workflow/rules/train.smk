# Training jobs, named <key>-<identity of its spec and data>. Each model resumes from its epoch
# checkpoint. `resources.train.models_per_job` > 1 trains the seeds of one point of the design space
# one after another in one process (batches.py: a job pays Python's and torch's start once).


# One model per job: a batch of one. Its params and command are those of the rule before batches
# existed, so that Snakemake's records of a workspace trained one model per job (smoke, paper) still
# match and nothing retrains.
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


# Several models per job: one rule per job, as its outputs share no wildcard. Snakemake prefers a rule
# without wildcards to `train` for the same file, so each of these files is made here (a checkpoint
# named on the command line trains its whole batch). A job killed mid-way loses its outputs (Snakemake
# deletes an incomplete job's), not its members' epoch checkpoints (kept until the whole batch has
# finished), so its rerun writes the finished members at once. A job reruns whole when one member's
# files are missing or its membership changes (a seed added): its other members retrain too, to the
# same bytes on the same machine (README, "Outputs are named by their identity").
for batch in TRAIN_BATCHES:
    if len(batch.runs) == 1:
        continue

    rule:
        name:
            batch.rule_name
        input:
            data=as_ancient(sorted({r.train_data for r in batch.runs})),
        output:
            model=checkpoints_of(batch.runs),
            log=train_logs_of(batch.runs),
        params:
            models=train_arguments(batch.runs),
            device=CFG["device"],
        log:
            f"logs/train/{batch.stem}.log",
        benchmark:
            f"logs/benchmark/train/{batch.stem}.tsv"
        conda:
            ENV
        threads: RES["train"]["threads"]
        resources:
            mem_mb=RES["train"]["mem_mb"],
            runtime=RES["train"]["runtime"] * len(batch.runs),
            gpu=RES["train"].get("gpu", 0),
        shell:
            "python -m implicit_repro train {params.models} --threads {threads} --device {params.device} 2> {log}"


rule train_all:
    input:
        train_outputs(),
