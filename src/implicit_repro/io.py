"""Atomic writes and safe loads.

Every file the pipeline produces goes through a temporary name in the same folder and an
``os.replace``, so a killed job never leaves a half-written file behind under the real name.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from implicit_repro.errors import ReproError


SCALE_ENV = "IMPLICIT_REPRO_SCALE"  # set by the rules: the scale of the run a job belongs to


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it: set it, then put it back
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates the file 0600; give it the mode a plain open() would, so that a team's shared
    # results folder (umask 002) stays readable and writable by the group.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=True) + "\n")


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def finite_or_none(node: Any) -> Any:
    """JSON has no NaN: write null so every reader sees a missing value (a diverged loss) the same way."""
    if isinstance(node, dict):
        return {k: finite_or_none(v) for k, v in node.items()}
    if isinstance(node, list):
        return [finite_or_none(v) for v in node]
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines file (a training log); a missing or broken one names itself."""
    try:
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise ReproError(f"{path}: not a readable JSON-lines log ({type(exc).__name__}: {exc}). Delete it and rerun "
                         f"`{regenerate_command(path)}`.") from None


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    # Through a buffer: torch names the archive after the file, and the temporary name is random,
    # so saving to it directly would make equal contents differ in bytes.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def regenerate_command(path: str | os.PathLike) -> str:
    """The command that rebuilds ``path``, at the scale of the run that asked for it (the rules
    export it; a hand-run job says where the scale goes)."""
    scale = os.environ.get(SCALE_ENV)
    # The target before --config: Snakemake's --config takes every word after it, a target included.
    return f"snakemake --cores 2 {path} --config scale={scale or '<the scale you ran>'}"


def load_torch(
    path: str | os.PathLike, kind: str, error: type[Exception], required: tuple[str, ...] = ()
) -> Any:
    """Load a tensor file without unpickling arbitrary objects; name the file if it is broken or
    lacks one of the ``required`` keys."""
    path = Path(path)
    regenerate = f"Delete it and rerun `{regenerate_command(path)}` to regenerate it."
    if not path.is_file():
        raise error(f"{path}: {kind} file not found. Regenerate it with `{regenerate_command(path)}`.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        # Not torch's own advice (to load with weights_only=False): wrong for a corrupt file, unsafe
        # for an untrusted one.
        raise error(f"{path}: corrupt, truncated or not a {kind} file this pipeline wrote ({type(exc).__name__}). "
                    f"{regenerate}") from exc
    missing = [k for k in required if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise error(f"{path}: not a {kind} of this pipeline (missing {', '.join(missing)}). {regenerate}")
    return obj
