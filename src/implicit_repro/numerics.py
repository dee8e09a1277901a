"""What decides a job's floating-point results, and the `numerics: portable` switch.

The same config gives byte-identical results on one machine, not across CPU types: PyTorch picks its
CPU kernels (AVX2, AVX-512, ...) and MKL / oneDNN their code paths at run time, and each rounds
differently, so a model trained on another node differs as with a change of seed. Every checkpoint and
metrics file therefore records the facts below. ``numerics: portable`` (config) pins those code paths
to the baseline instruction set and makes PyTorch use deterministic algorithms, for users who need one
result across the nodes of a cluster; it is slower (1.9× per epoch for a small prefix-sum job on a 2-core AMD EPYC VM,
``benchmarks/numerics_cost.py``) and its identity across CPU types is this project's intent, not
something its tests can show on one machine.
"""

from __future__ import annotations

import os

# (torch is imported inside the functions that need it: the Snakefile imports this module for
# `shell_exports` and must stay torch-free to start in about a second.)
MODE_ENV = "IMPLICIT_REPRO_NUMERICS"  # set by the rules from the config's `numerics`
MODES = ("native", "portable")
# Environment read by PyTorch, oneDNN and MKL when they load, so the rules export it before python
# starts (setting it from inside a running job would be too late).
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}


def cpu_model() -> str:
    """The CPU's model name as `lscpu` gives it ("?" where it cannot say): what every timing is
    reported with, since the same job runs at different speeds on different CPUs."""
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def shell_exports(mode: str) -> str:
    """The `export ...;` a rule's shell command starts with for this numerics mode."""
    pinned = PORTABLE_ENV if mode == "portable" else {}
    return "export " + " ".join([f"{MODE_ENV}={mode}", *(f"{k}={v}" for k, v in pinned.items())]) + "; "


def apply_mode() -> None:
    """Inside a job: deterministic algorithms in portable mode (the env did the rest)."""
    import torch

    if os.environ.get(MODE_ENV) == "portable":
        torch.use_deterministic_algorithms(True)


def record(device: str = "cpu") -> dict:
    """What determines this process's numerics: torch build, CPU code path, device, threads, mode."""
    import torch

    device = torch.device(device)
    return {
        "torch": str(torch.__version__),  # a TorchVersion, which weights_only loading refuses
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "mode": os.environ.get(MODE_ENV, "native"),
        "pinned": {k: os.environ[k] for k in PORTABLE_ENV if k in os.environ},
    }
