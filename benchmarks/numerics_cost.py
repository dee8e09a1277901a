"""What `numerics: portable` costs: the same training job run natively and with the CPU code paths
pinned (numerics.PORTABLE_ENV + deterministic algorithms), alternating, side by side on this machine.
Prints seconds per epoch of each run, the ratio of the medians, and whether the two modes trained
the same weights. It asserts nothing.

    python benchmarks/numerics_cost.py                                   # anil2022 prefix sums, small
    python benchmarks/numerics_cost.py --run anil2022/mazes/baseline/unrolled/seed0 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from implicit_repro import config, numerics  # noqa: E402
from implicit_repro.papers import part  # noqa: E402


def train_once(run, mode: str, out: Path, threads: int) -> tuple[list[float], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for key in numerics.PORTABLE_ENV:
        env.pop(key, None)
    env.update(dict(item.split("=", 1) for item in numerics.shell_exports(mode)[len("export "):-2].split()))
    model, log = out / f"{mode}.pt", out / f"{mode}.jsonl"
    for p in (model, log, model.with_suffix(".resume.pt")):
        p.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "implicit_repro", "train", "--spec", json.dumps(run.train_spec),
                    "--data", str(ROOT / run.train_data), "--model-out", str(model), "--log-out", str(log),
                    "--threads", str(threads)], env=env, check=True, capture_output=True)
    seconds = [json.loads(line)["seconds"] for line in log.read_text().splitlines()]
    import torch

    state = torch.load(model, weights_only=True)["model"]
    digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in state.values())).hexdigest()[:16]
    return seconds, digest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="anil2022/prefix_sums/baseline/unrolled/seed0")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": args.scale})
    paper = args.run.split("/")[0]
    run = {r.key: r for r in part(paper, "grid").runs(cfg[paper])}[args.run]
    if not (ROOT / run.train_data).exists():
        sys.exit(f"error: {run.train_data} is missing; generate it with "
                 f"`snakemake --cores 2 --config scale={args.scale} {run.train_data}`")
    print(f"{args.run} at {args.scale}, {args.threads} thread(s), CPU: {numerics.cpu_model()}")
    per_epoch = {"native": [], "portable": []}
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            for mode in ("native", "portable") if k % 2 == 0 else ("portable", "native"):
                seconds, digest = train_once(run, mode, Path(tmp), args.threads)
                per_epoch[mode] += seconds
                digests.setdefault(mode, set()).add(digest)
                print(f"  {mode:8s} run {k + 1}: {statistics.median(seconds):.3f} s/epoch (median of "
                      f"{len(seconds)}), weights {digest}")
    native, portable = (statistics.median(per_epoch[m]) for m in ("native", "portable"))
    print(f"portable / native, median s/epoch: {portable:.3f} / {native:.3f} = {portable / native:.2f}x")
    same = digests["native"] == digests["portable"]
    print(f"same weights in both modes: {same}; each mode reproducible: "
          f"{all(len(d) == 1 for d in digests.values())}")


if __name__ == "__main__":
    main()
