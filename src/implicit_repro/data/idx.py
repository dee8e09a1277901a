"""The IDX format of the MNIST files, read and written without torchvision.

Layout: two zero bytes, a type code, the number of dimensions d, then d big-endian uint32 sizes,
then the values in C order, big-endian. Files ending in .gz are gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from implicit_repro.data.download import verify_sha256
from implicit_repro.errors import DatasetError
from implicit_repro.io import atomic_path

# type code -> big-endian numpy dtype
DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}


def parse_idx(raw: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Decode one IDX payload; ``name`` only labels errors."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in DTYPES:
        raise DatasetError(f"{name}: not an IDX file (bad magic number {raw[:4].hex()}).")
    dtype, ndim = DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{name}: IDX header truncated.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{name}: IDX body has {len(raw) - header} bytes, the header {shape} needs {expected}; "
            f"the file is truncated or corrupt. Delete it and download it again."
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))


def read_idx(path: str | os.PathLike, sha256: str) -> torch.Tensor:
    """Verify ``path`` against ``sha256``, then (and only then) decompress and decode it."""
    path = verify_sha256(path, sha256)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc}).") from exc
    return parse_idx(raw, str(path))


def encode_idx(values: torch.Tensor) -> bytes:
    array = values.numpy()
    code = CODES.get(array.dtype)
    if code is None:
        raise ValueError(f"IDX has no type code for {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, values: torch.Tensor) -> None:
    """Write ``values`` as IDX (gzip-compressed if the name ends in .gz, with a fixed mtime so
    equal tensors give equal bytes)."""
    path = Path(path)
    raw = encode_idx(values)
    if path.suffix == ".gz":
        raw = gzip.compress(raw, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)
