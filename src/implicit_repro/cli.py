"""Command line of the pipeline: one subcommand per kind of Snakemake job.

    python -m implicit_repro download --url URL --sha256 HEX --out F
    python -m implicit_repro download-mnist --base-url URL --checksums JSON --out-dir D
    python -m implicit_repro generate --paper anil2022 --task prefix_sums --split bits16 --params JSON --out F
    python -m implicit_repro train    --spec JSON --data F --model-out F --log-out F [--spec ... --log-out F] --threads N --device D
    python -m implicit_repro evaluate --spec JSON --model F --train-log F --out F [--spec ... --out F] --threads N --device D
    python -m implicit_repro report   --paper P ITEM --metrics F... --papers F --scale S --out-stem STEM
    python -m implicit_repro report   readme --metrics F... --papers F --scale S --config JSON --out-stem STEM
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from implicit_repro import numerics
from implicit_repro.errors import ReproError
from implicit_repro.specs import EVAL_KEYS, FIX, parse_json, require_train


def _threads(n: int) -> None:
    # Exactly the rule's `threads`, so `--cores` bounds the machine's load.
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)
    numerics.apply_mode()


def cmd_download_mnist(args) -> None:
    from implicit_repro.data.digits import download_mnist
    from implicit_repro.data.download import sha256_of
    from implicit_repro.data.registry import MNIST_FILE_NAMES

    folder = download_mnist(args.out_dir, parse_json(args.checksums, "--checksums"), base_url=args.base_url)
    for name in MNIST_FILE_NAMES:
        print(f"{folder / name}: SHA-256 {sha256_of(folder / name)} verified", file=sys.stderr)


def cmd_download(args) -> None:
    from implicit_repro.data.download import download

    path = download(args.url, args.out, args.sha256)
    print(f"{path}: SHA-256 {args.sha256} verified", file=sys.stderr)


def cmd_generate(args) -> None:
    from implicit_repro.data.store import save_dataset
    from implicit_repro.papers import part
    from implicit_repro.seeding import derive_seed, generator

    parts = (args.paper, args.task, "data", args.split)
    params = parse_json(args.params, "--params")
    try:
        tensors = part(args.paper, "data").generate(args.task, params, generator(*parts))
    except KeyError as exc:  # the generators read their parameters by name
        raise ReproError(f"--params: the {args.task} split {args.split!r} needs the generator parameter "
                         f"{exc.args[0]!r}, which is missing. {FIX}") from None
    save_dataset(args.out, tensors, {"task": args.task, "split": args.split, "params": params,
                                     "seed": derive_seed(*parts)})


def cmd_train(args) -> None:
    """Each model in turn, in this one process (batches.py: several models per job). Every member's
    epoch checkpoint stays until the last is written: a job killed mid-way, whose outputs Snakemake
    deletes, writes its finished members again at once when it reruns."""
    from implicit_repro.train import TrainJob, train

    n = len(args.spec)
    if not len(args.data) == len(args.model_out) == len(args.log_out) == n:
        raise ReproError(f"train: {n} --spec, {len(args.data)} --data, {len(args.model_out)} --model-out and "
                         f"{len(args.log_out)} --log-out: give one of each per model, in the same order.")
    _threads(args.threads)
    specs = [require_train(parse_json(s, "--spec"), "--spec") for s in args.spec]  # all checked first
    jobs = [TrainJob(spec, Path(data), Path(model), Path(log))
            for spec, data, model, log in zip(specs, args.data, args.model_out, args.log_out)]
    for job in jobs:
        train(job, device=_device(args.device), keep_resume=True)
    for job in jobs:
        job.resume_path.unlink(missing_ok=True)


def cmd_evaluate(args) -> None:
    """Each model in turn, in this one process (batches.py: several models per job)."""
    from implicit_repro.evaluation import EvalJob, evaluate

    n = len(args.spec)
    if len(args.model) != n or len(args.out) != n or len(args.train_log) not in (0, n):
        raise ReproError(f"evaluate: {n} --spec, {len(args.model)} --model, {len(args.out)} --out and "
                         f"{len(args.train_log)} --train-log: give one of each per model (--train-log for every "
                         "model or for none), in the same order.")
    _threads(args.threads)
    logs = [Path(p) for p in args.train_log] or [None] * n
    specs = [require_train(parse_json(s, "--spec"), "--spec", EVAL_KEYS) for s in args.spec]  # all checked first
    for spec, model, out, log in zip(specs, args.model, args.out, logs):
        evaluate(EvalJob(spec, Path(model), Path(out), log, device=_device(args.device)))


def cmd_report(args) -> None:
    from implicit_repro.results.build import build_item
    from implicit_repro.results.collect import load_records
    from implicit_repro.results.reported import load_papers

    papers = load_papers(args.papers)
    records = load_records(args.metrics, args.train_logs)
    if args.item == "readme":
        _report_readme(args, papers, records)
    elif args.paper is None:
        raise ReproError(f"report {args.item}: name the paper the item belongs to with --paper")
    else:
        build_item(args.paper, args.item, records, papers, args.scale, args.out_stem)


def _report_readme(args, papers: dict, records: list[dict]) -> None:
    from implicit_repro.io import write_text
    from implicit_repro.papers import part
    from implicit_repro.results import readme
    from implicit_repro.results.scorecard import score

    cfg = parse_json(args.config, "--config")
    ran = [p for p in papers if p in cfg]
    by_paper = {p: [r for r in records if r["paper"] == p] for p in ran}
    card = score([row for p in ran for row in part(p, "claims").scorecard(by_paper[p])], papers)
    write_text(Path(args.out_stem).with_name("scorecard.csv"), card.to_csv(index=False, float_format="%.6g"))
    choices = "\n\n".join(part(p, "choices").choices_markdown(cfg, papers[p]).strip() for p in ran)
    outcome = {p: part(p, "claims").training_outcome_markdown(by_paper[p]) for p in ran}
    text = readme.render(papers, set(args.produced), card, args.scale, choices, outcome)
    write_text(args.out_stem + ".md", text)
    write_text(Path(args.out_stem).with_name("scorecard_summary.md"), readme.summary_markdown(papers, card, args.scale))


def cmd_sync_readme(args) -> None:
    """Copy the pipeline's scorecard summary into the top-level README, between its markers."""
    from implicit_repro.io import write_text
    from implicit_repro.results.readme import splice_summary

    try:
        summary, text = Path(args.summary).read_text(), Path(args.readme).read_text()
    except OSError as exc:
        raise ReproError(f"{exc.filename}: cannot read it ({exc.strerror}). Run `snakemake --cores 2` first to "
                         "generate paper_results/scorecard_summary.md.") from None
    write_text(args.readme, splice_summary(text, summary, args.readme))


def cmd_plan(args) -> None:
    """Print the compute plan of a scale from the timings of a measured one (or record those timings)."""
    import datetime
    import subprocess

    from implicit_repro import config, plan
    from implicit_repro.papers import known
    from implicit_repro.results.reported import load_papers

    root = Path(args.config).parent.parent
    schema = root / "workflow/schemas/config.schema.yaml"
    facts = load_papers(args.papers)
    if args.scale is None and not args.record:
        raise ReproError("plan: name the scale to plan with --scale (smoke, small or paper), or write the measured "
                         "scale's reference timings with --record.")
    measured = config.load(args.config, schema, {"scale": args.measured_scale})
    papers = [p for p in known() if p in measured and p in facts]
    measured_jobs = plan.jobs(measured, papers)
    logs, reference = Path(args.logs), root / plan.REFERENCE / f"{args.measured_scale}.tsv"
    timings = plan.timings_from_logs(measured_jobs, logs, args.measured_scale) if args.timings != "reference" else []
    early_exit = plan.early_exit_summary(measured_jobs, root / "results")
    if args.record:
        if not any(t.rule in plan.SCALED for t in timings):
            raise ReproError(f"{logs}/benchmark: no timings of a training or evaluation job at scale "
                             f"'{args.measured_scale}' to record. Run `snakemake --cores 2 --config "
                             f"scale={args.measured_scale}` first.")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root)
        from implicit_repro import work

        about = {"scale": args.measured_scale, "cpu": numerics.cpu_model(), "date": datetime.date.today().isoformat(),
                 "commit": commit.stdout.strip() or "?", "work_model": str(work.VERSION),
                 "early_exit": early_exit or "not recorded"}
        plan.write_reference(reference, timings, about)
        print(f"wrote {reference}: {len(timings)} jobs measured on {about['cpu']}")
        return
    if any(t.rule in plan.SCALED for t in timings):
        source = f"{logs}/ (each job's log and benchmark file), measured on this machine ({numerics.cpu_model()})"
        missing = plan.uncovered(measured_jobs, timings)
        kinds = ", ".join(f"{rule} {key}" for rule, key in sorted(missing)[:3]) + (", ..." if len(missing) > 3 else "")
        if missing and args.timings != "logs" and reference.exists():
            shipped, about = plan.read_reference(reference)
            timings += [t for t in shipped if (t.rule, t.match) in missing]
            source += (f"; {len(missing)} kind(s) of job with no timing there ({kinds}) are timed by "
                       f"{reference.relative_to(root)}, measured on {about.get('cpu', '?')}")
        elif missing:
            source += (f"; {len(missing)} kind(s) of job have no timing there ({kinds}): each is estimated at the "
                       "rate of the nearest measured kind of its paper, where there is one")
    elif args.timings != "logs" and reference.exists():
        timings, about = plan.read_reference(reference)
        source = (f"{reference.relative_to(root)}, the reference timings shipped with the project, measured on "
                  f"{about.get('cpu', '?')} ({about.get('date', '?')}, recorded at commit {about.get('commit', '?')})")
        early_exit = about.get("early_exit", "")
    else:
        shipped = sorted(p.stem for p in (root / plan.REFERENCE).glob("*.tsv"))
        raise ReproError(f"no timings of scale '{args.measured_scale}': no benchmark file in {logs}/benchmark and no "
                         f"reference file {reference.relative_to(root)}. Run `snakemake --cores 2 --config "
                         f"scale={args.measured_scale}` first, or name a measured scale with reference timings "
                         f"(--measured-scale {' or '.join(shipped) or 'small'}).")
    target = config.load(args.config, schema, {"scale": args.scale})
    model = plan.fit(timings)
    reports = {p: len(facts[p]["items"]) + (k == 0) for k, p in enumerate(papers)}  # + the readme, once
    on_gpu = plan.gpu_rules(target)
    table = plan.estimate(plan.jobs(target, papers), model, reports, args.gpu_speedup, on_gpu)
    print(plan.render(table, args.scale, args.measured_scale, source, model, args.gpu_speedup, on_gpu, early_exit))


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="implicit_repro", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    dl = sub.add_parser("download", help="fetch one file, kept only if its SHA-256 matches")
    dl.add_argument("--url", required=True)
    dl.add_argument("--sha256", required=True)
    dl.add_argument("--out", required=True)
    dl.set_defaults(func=cmd_download)

    d = sub.add_parser("download-mnist", help="fetch the four MNIST files, each verified against its SHA-256")
    d.add_argument("--base-url", required=True, help="folder URL the file names are appended to (ends in /)")
    d.add_argument("--checksums", required=True, help="JSON: file name -> SHA-256 (the config's data.mnist.checksums)")
    d.add_argument("--out-dir", required=True)
    d.set_defaults(func=cmd_download_mnist)

    g = sub.add_parser("generate", help="write one seeded dataset file")
    g.add_argument("--paper", required=True)
    g.add_argument("--task", required=True)
    g.add_argument("--split", required=True, help="the split's name (part of the seed)")
    g.add_argument("--params", required=True, help="the generator's parameters as JSON")
    g.add_argument("--out", required=True)
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="train models one after another, each resuming from its epoch checkpoint "
                                     "(--spec, --data, --model-out and --log-out once per model)")
    t.add_argument("--spec", required=True, action="append", help="the model's training parameters as JSON")
    t.add_argument("--data", required=True, action="append")
    t.add_argument("--model-out", required=True, action="append")
    t.add_argument("--log-out", required=True, action="append")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate trained models on every split (--spec, --model, --train-log and "
                                        "--out once per model)")
    e.add_argument("--spec", required=True, action="append")
    e.add_argument("--model", required=True, action="append")
    e.add_argument("--train-log", action="append", default=[],
                   help="the run's train_log.jsonl (papers that report training measurements)")
    e.add_argument("--out", required=True, action="append")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="build one item of paper_results/ or figures/")
    r.add_argument("item", help="an item id of config/papers.yaml, or 'readme'")
    r.add_argument("--paper", help="the paper the item belongs to (not for readme)")
    # Possibly none: table2's gradient study is empty at scales that configure none.
    r.add_argument("--metrics", nargs="*", default=[])
    r.add_argument("--train-logs", nargs="*", default=[],
                   help="the runs' train_log.jsonl, one per metrics file in the same order (training time)")
    r.add_argument("--papers", default="config/papers.yaml")
    r.add_argument("--scale", required=True)
    r.add_argument("--out-stem", required=True)
    r.add_argument("--produced", nargs="*", default=[], help="paper/item ids produced (readme)")
    r.add_argument("--config", default="{}", help="resolved config as JSON (readme)")
    r.set_defaults(func=cmd_report)

    pl = sub.add_parser("plan", help="jobs, CPU/GPU-hours and peak memory of a scale, before submitting it")
    pl.add_argument("--scale", choices=["smoke", "small", "paper"], help="the scale to plan")
    pl.add_argument("--measured-scale", default="small", help="the scale whose timings the plan is fitted to")
    pl.add_argument("--logs", default="logs")
    pl.add_argument("--timings", choices=["auto", "logs", "reference"], default="auto",
                    help="auto: this checkout's benchmark files of the measured scale if any, else the reference "
                         "timings shipped in benchmarks/timings/<scale>.tsv")
    pl.add_argument("--record", action="store_true",
                    help="write the measured scale's timings from logs/ to benchmarks/timings/<scale>.tsv and stop")
    pl.add_argument("--config", default="config/config.yaml")
    pl.add_argument("--papers", default="config/papers.yaml")
    pl.add_argument("--gpu-speedup", type=float, default=20.0,
                    help="how many times faster a job's work runs on one GPU than on one CPU thread (assumed)")
    pl.set_defaults(func=cmd_plan)

    sr = sub.add_parser("sync-readme", help="copy paper_results/scorecard_summary.md into README.md's summary block")
    sr.add_argument("--summary", default="paper_results/scorecard_summary.md")
    sr.add_argument("--readme", default="README.md")
    sr.set_defaults(func=cmd_sync_readme)
    return p


# The last line of a job's log (stderr): this process's CPU seconds when the command began (Python,
# torch and the package loaded), spent on its work (cpu.work: training epochs, the evaluation) and in
# all. The compute plan fits a fixed cost per job (all but the work) and a rate per unit of work to
# these (plan.read_cpu_line).
CPU_LINE = "cpu seconds (this process, user + system):"
JOBS = ("generate", "train", "evaluate", "report")


def main(argv: list[str] | None = None) -> None:
    startup = time.process_time()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.command in JOBS:
        from implicit_repro import cpu

        print(f"{CPU_LINE} start-up {startup:.3f}, work {cpu.work_seconds():.3f}, total {time.process_time():.3f}",
              file=sys.stderr)
