# Training jobs, named <key>-<identity of its spec and data>. Each model resumes from its epoch
# checkpoint. `resources.train.models_per_job` > 1 trains the seeds of one point of the design space
# one after another in one process (batches.py: a job pays Python's and torch's start once).


TRAIN = ("python -m implicit_repro train {params.models} --threads {threads} --device {params.device} "
         "2> {log}")


# One model per job: a batch of one, or a target named on the command line.
rule train:
    input:
        data=lambda w: ancient(trained_run(w).train_data),  # named by identity: see as_ancient
    output:
        model="checkpoints/{paper}/{task}/{run}/seed{seed}-{id}/model.pt",
        log="checkpoints/{paper}/{task}/{run}/seed{seed}-{id}/train_log.jsonl",
    params:
        models=lambda w: train_arguments([trained_run(w)]),
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
        TRAIN


# Several models per job: one rule per job, as its outputs share no wildcard. Snakemake prefers a rule
# without wildcards to `train` for the same file, so each of these files is made here. A job killed
# mid-way loses its outputs (Snakemake deletes an incomplete job's), not its members' epoch checkpoints
# (train.py: kept until the whole batch has finished), so its rerun writes the finished members at once.
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
            TRAIN


rule train_all:
    input:
        train_outputs(),
