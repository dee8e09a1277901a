"""Foundation benchmarks: print figures (not assertions) for three performance targets.

1. sweep:     one-pass `trajectory_sweep` over K=1..K vs one `model(x, k)` call per K.
2. train:     a step of the project's training loop (`train._run_epoch`) vs a bare PyTorch loop.
3. snakemake: a no-op `snakemake` rerun on complete smoke-scale results.

    python benchmarks/bench_foundation.py                   # all three (~1.5 min on 2 cores)
    python benchmarks/bench_foundation.py --skip-snakemake  # the two in-process ones only
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from implicit_repro.data import prefix_sums
from implicit_repro.interventions import get_intervention
from implicit_repro.models import build_model
from implicit_repro.seeding import generator
from implicit_repro.sweep import trajectory_sweep
from implicit_repro.tasks import get_task
from implicit_repro.train import _run_epoch, learning_rate, make_model

REPO = Path(__file__).resolve().parents[1]
TASK = "prefix_sums"
PAPER = "anil2022"


@dataclass
class Result:
    name: str
    figure: str
    target: str
    met: bool


def make_data(bits: int, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs and targets of `count` distinct `bits`-bit strings (seeded, so reruns match)."""
    task = get_task(TASK)
    g = torch.Generator().manual_seed(seed)
    data = prefix_sums.generate(bits, count, g)
    return task.model_input(data["inputs"]), task.target(data["targets"])


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


# --- 1. one-pass sweep vs one run per K ------------------------------------------------------


@torch.no_grad()
def per_k_correct(model, task, x, y, max_iters: int) -> torch.Tensor:
    """The naive way: a fresh forward pass for every K (K(K+1)/2 cell applications in all)."""
    return torch.stack([task.correct(model(x, k), y) for k in range(1, max_iters + 1)])


def pretrain(model, task, x, y, steps: int, iters: int = 8, batch: int = 50) -> None:
    """A few Adam steps, so that some examples are right at some K: an untrained model gets every
    example wrong at every K, and comparing two all-False tables would prove nothing. A high
    learning rate and a short unroll get there in seconds; how good the model is does not matter."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        loss = task.loss(model(x[idx], iters), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def bench_sweep(args) -> Result:
    task = get_task(TASK)
    torch.manual_seed(0)
    model = build_model(TASK, args.width, args.blocks)
    x, y = make_data(args.sweep_bits, args.sweep_examples)
    k = args.sweep_k
    t_train, _ = timed(lambda: pretrain(model, task, x, y, args.sweep_train_steps))
    model.eval()
    t_sweep, sweep = timed(lambda: trajectory_sweep(model, task, x, y, k).correct)
    t_naive, naive = timed(lambda: per_k_correct(model, task, x, y, k))
    identical = torch.equal(sweep, naive)
    ratio = t_naive / t_sweep
    acc = sweep.float().mean(1)
    print(f"[sweep] {len(x)} examples x {args.sweep_bits} bits, width {args.width}, "
          f"blocks {args.blocks}, K=1..{k}; model pre-trained {args.sweep_train_steps} steps "
          f"({t_train:.1f} s, not timed below)")
    print(f"[sweep] trajectory_sweep (one pass): {t_sweep:.3f} s")
    print(f"[sweep] model(x, k) for each k:       {t_naive:.3f} s  ({ratio:.1f}x slower)")
    print(f"[sweep] per-K, per-example correctness identical: {identical}; accuracy min/max over K "
          f"{acc.min():.3f}/{acc.max():.3f} (K=1: {acc[0]:.3f}, K={k}: {acc[-1]:.3f}), "
          f"{int(sweep.sum())} of {sweep.numel()} (K, example) pairs correct")
    if not sweep.any():
        print("[sweep] warning: no example is right at any K, so the identity check is vacuous; "
              "raise --sweep-train-steps")
    return Result("sweep: per-K / one-pass time", f"{ratio:.1f}x (identical={identical})",
                  "one pass faster, identical accuracies", identical and ratio > 1)


# --- 2. the project's training step vs a bare PyTorch loop -----------------------------------


def config_defaults() -> dict:
    """`defaults.anil2022.prefix_sums` of config/config.yaml (the `small` scale)."""
    with open(REPO / "config/config.yaml") as fh:
        return yaml.safe_load(fh)["defaults"][PAPER][TASK]


def train_spec(t: dict, seed: int = 0) -> dict:
    """The spec `train_spec` in workflow/rules/common.smk builds, for the baseline intervention."""
    return {
        "paper": PAPER, "task": TASK, "intervention": "baseline", "seed": seed,
        "data": {"train_fraction": t["data"]["train_fraction"]},
        "model": t["model"], "train": t["train"], "intervention_params": t["intervention_params"],
    }


def project_rngs(spec: dict) -> dict:
    # The generators `train.train` builds; same seeds in both loops give the same batch order.
    ident = (spec["paper"], spec["task"], spec["seed"])
    return {"order": generator(*ident, "order"), "intervention": generator(*ident, "intervention")}


def new_optimizer(model, cfg: dict) -> torch.optim.Adam:
    # The rate _run_epoch sets for epoch 0, so both loops do the very same arithmetic.
    return torch.optim.Adam(model.parameters(), lr=learning_rate(cfg, 0), weight_decay=cfg["weight_decay"])


def bare_epoch(model, opt, x_all, y_all, cfg: dict, order_rng: torch.Generator) -> None:
    """The minimum a training epoch must do: what the project's loop is measured against."""
    model.train()
    for idx in torch.randperm(len(x_all), generator=order_rng).split(cfg["batch_size"]):
        x, y = x_all[idx], y_all[idx]
        logits = model(x, cfg["iters"], torch.zeros(model.state_shape(x)))
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()


def bench_train(args) -> Result:
    defaults = config_defaults()
    spec = train_spec(defaults)
    cfg = spec["train"]
    task, intervention = get_task(TASK), get_intervention("baseline")
    x_all, y_all = make_data(defaults["data"]["train_bits"], args.train_examples)
    steps = -(-len(x_all) // cfg["batch_size"])

    # Same init (make_model seeds it), same optimizer settings, same batch order for both loops.
    proj_model, bare_model = make_model(spec), make_model(spec)
    proj_opt, bare_opt = new_optimizer(proj_model, cfg), new_optimizer(bare_model, cfg)
    proj_rng, bare_rng = project_rngs(spec), project_rngs(spec)

    def project():
        # tqdm in _run_epoch writes to stderr; send it nowhere (its cost is still counted).
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            _run_epoch(proj_model, task, intervention, proj_opt, x_all, y_all, 0, spec, proj_rng, "cpu")

    def bare():
        bare_epoch(bare_model, bare_opt, x_all, y_all, cfg, bare_rng["order"])

    # Interleave the repeats, alternating which goes first, so that drift in machine load and
    # cache effects hit both loops alike.
    times = {"project": [], "bare": []}
    loops = [("project", project), ("bare", bare)]
    for rep in range(args.train_warmup + args.train_repeats):
        for name, fn in loops if rep % 2 == 0 else loops[::-1]:
            seconds, _ = timed(fn)
            if rep >= args.train_warmup:
                times[name].append(seconds / steps)
    same = all(torch.equal(a, b) for a, b in zip(proj_model.parameters(), bare_model.parameters()))
    proj_ms = statistics.median(times["project"]) * 1e3
    bare_ms = statistics.median(times["bare"]) * 1e3
    ratio = proj_ms / bare_ms
    print(f"[train] {len(x_all)} examples, batch {cfg['batch_size']} ({steps} steps/epoch), "
          f"iters {cfg['iters']}, width {spec['model']['width']}, blocks {spec['model']['blocks']}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"[train] median over {args.train_repeats} epochs after {args.train_warmup} warm-up: "
          f"project {proj_ms:.2f} ms/step, bare {bare_ms:.2f} ms/step, ratio {ratio:.3f}")
    # Identical weights at the end show the bare loop did the same work, not less.
    print(f"[train] weights of the two models identical after {args.train_warmup + args.train_repeats} "
          f"epochs each: {same}")
    return Result("train: project/bare time per step", f"{ratio:.3f}", "<= 1.05", ratio <= 1.05)


# --- 3. no-op snakemake rerun --------------------------------------------------------------


def repo_files() -> list[str]:
    """Tracked plus untracked-but-not-ignored files: what a fresh checkout would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    return sorted({f for f in listed.split("\0") if f and (REPO / f).is_file()})


def copy_repo(dest: Path) -> None:
    # shutil.copy, not copy2: fresh mtimes, as a clone would have.
    for rel in repo_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, dest / rel)


def run_snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    bindir = Path(sys.executable).parent
    # Jobs call `python -m implicit_repro`: put this interpreter's bin first so they find it.
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(bindir / "snakemake"), *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def bench_snakemake(args) -> Result:
    run = ["--cores", str(args.cores), "--config", "scale=smoke"]
    with tempfile.TemporaryDirectory(prefix="bench_snakemake_") as tmp:
        workdir = Path(tmp)
        copy_repo(workdir)
        # --forceall: the copy carries the repo's own paper_results/ and figures/, which can look
        # up to date while results/ and checkpoints/ are missing; the rerun must find every file.
        first, _ = run_snakemake(workdir, *run, "--forceall")
        second, log = run_snakemake(workdir, *run)
        startup, _ = run_snakemake(workdir, "--version")
    nothing_to_do = "Nothing to be done" in log
    print(f"[snakemake] first run (--forceall, smoke scale, {args.cores} cores): {first:.1f} s")
    print(f"[snakemake] no-op rerun: {second:.2f} s (reported nothing to be done: {nothing_to_do}); "
          f"for scale, `snakemake --version` alone takes {startup:.2f} s")
    return Result("snakemake: no-op rerun", f"{second:.2f} s (nothing to do={nothing_to_do})",
                  "<= 3 s", nothing_to_do and second <= 3.0)


# --- driver --------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_argument_group("1. sweep")
    s.add_argument("--sweep-examples", type=int, default=500, help="examples (default 500)")
    s.add_argument("--sweep-bits", type=int, default=12, help="bits per example (default 12)")
    s.add_argument("--sweep-k", type=int, default=64, help="largest iteration count K (default 64)")
    s.add_argument("--sweep-train-steps", type=int, default=100,
                   help="Adam steps before the sweep so accuracies are not all zero (default 100)")
    s.add_argument("--width", type=int, default=32, help="model width (default 32, as config)")
    s.add_argument("--blocks", type=int, default=1, help="residual blocks (default 1, as config)")
    t = p.add_argument_group("2. training step (model and train settings: config defaults)")
    t.add_argument("--train-examples", type=int, default=1000, help="examples per epoch (default 1000)")
    t.add_argument("--train-warmup", type=int, default=1, help="warm-up epochs per loop (default 1)")
    t.add_argument("--train-repeats", type=int, default=5, help="timed epochs per loop (default 5)")
    m = p.add_argument_group("3. snakemake")
    m.add_argument("--skip-snakemake", action="store_true", help="skip the no-op rerun benchmark")
    m.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    return p.parse_args(argv)


def print_summary(results: list[Result]) -> None:
    print("\n=== summary ===")
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"{r.name:<{width}}  {r.figure:<32}  target {r.target:<38}  "
              f"{'MET' if r.met else 'NOT MET'}")


def main(argv=None) -> None:
    args = parse_args(argv)
    # One thread for both training loops (and the sweep): timings comparable and less noisy.
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, torch.set_num_threads(1), {os.cpu_count()} CPUs\n")
    results = [bench_sweep(args), bench_train(args)]
    if not args.skip_snakemake:
        results.append(bench_snakemake(args))
    print_summary(results)


if __name__ == "__main__":
    main()
