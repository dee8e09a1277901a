"""CIFAR-10 and CIFAR-100, read from the official *binary* archives: nothing is unpickled.

The archives are the ones of the dataset's home page, https://www.cs.toronto.edu/~kriz/cifar.html.
A download is kept only if its SHA-256 matches the digest below, and an archive is checked again
before it is opened, so a corrupt, truncated or tampered file never reaches the tar or gzip parser.
The digests (and byte sizes) are those tensorflow_datasets publishes for these very URLs, in
https://github.com/tensorflow/datasets/blob/master/tensorflow_datasets/url_checksums/cifar10.txt and
.../url_checksums/cifar100.txt; ankane/torchvision-ruby (lib/torchvision/datasets/cifar10.rb and
cifar100.rb) lists the same two digests.

The members of a part are read straight out of the tar (``extractfile``), never extracted to disk, so
there is no half-extracted folder to go stale. Each member is a sequence of fixed-size records: the
label byte(s), then the 32x32 red, green and blue planes, each row-major (3,072 bytes). A CIFAR-100
record has two label bytes, the coarse (20 superclasses) then the fine (100 classes) label; we use
the fine one, the 100-way task everyone reports.

``normalize`` maps uint8 images to per-channel standardized floats; ``augment`` is the standard
training augmentation (zero-padded random crop, random horizontal flip), drawn from a generator.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from implicit_repro.data.download import download, verify_sha256
from implicit_repro.errors import DatasetError

from implicit_repro.data.cifar_sources import (CHANNELS, CIFAR, CROP_PAD, FLIP_PROBABILITY,  # noqa: F401
                                             IMAGE_BYTES, PARTS, SIDE, CifarSpec)


def spec(name: str) -> CifarSpec:
    try:
        return CIFAR[name]
    except KeyError:
        raise DatasetError(f"unknown CIFAR dataset {name!r}; known: {', '.join(CIFAR)}.") from None


# ---------------------------------------------------------------- download and read

def download_cifar(name: str, out_dir: str | os.PathLike, url: str | None = None) -> Path:
    """Fetch the archive of ``name`` to ``out_dir/<archive>``, kept only if its SHA-256 matches."""
    s = spec(name)
    return download(url or s.url, Path(out_dir) / s.archive, s.sha256)


def read_cifar(
    archive: str | os.PathLike, name: str, part: str, sha256: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of the train or test part of ``archive``.

    The archive is verified against ``sha256`` before it is opened. The part's members are read in
    the spec's order in one pass over the (gzip-compressed, so sequential) tar.
    """
    s = spec(name)
    wanted = s.members(part)
    archive = verify_sha256(archive, sha256)
    fix = "Delete it and download it again."
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name not in wanted:
                    continue
                if not member.isfile():
                    raise DatasetError(f"{archive}: member {member.name} is not a regular file. {fix}")
                if member.size % s.record_bytes:
                    raise DatasetError(
                        f"{archive}: member {member.name} has {member.size} bytes, not a multiple of the "
                        f"{s.record_bytes}-byte {name} record; the archive is truncated or corrupt. {fix}"
                    )
                found[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable tar.gz archive ({exc}). {fix}") from exc
    missing = [m for m in wanted if m not in found]
    if missing:
        raise DatasetError(
            f"{archive}: lacks member(s) {', '.join(missing)}; not the official {s.archive}. {fix}"
        )
    records = np.concatenate(
        [np.frombuffer(found[m], dtype=np.uint8).reshape(-1, s.record_bytes) for m in wanted]
    )
    labels = records[:, s.label_bytes - 1].astype(np.int64)
    if len(labels) and labels.max() >= s.classes:
        raise DatasetError(
            f"{archive}: {part} labels go up to {labels.max()}, but {name} has {s.classes} classes; "
            f"the archive is corrupt. {fix}"
        )
    images = np.ascontiguousarray(records[:, s.label_bytes:]).reshape(-1, CHANNELS, SIDE, SIDE)
    return torch.from_numpy(images), torch.from_numpy(labels)


# ---------------------------------------------------------------- model input

def normalize(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 images (..., 3, H, W) to float32: scaled to [0, 1], then (x - mean) / std per channel."""
    if images.dtype != torch.uint8:
        raise ValueError(f"normalize takes uint8 images (0..255), got {images.dtype}")
    if images.dim() < 3 or images.shape[-3] != CHANNELS:
        raise ValueError(f"normalize takes (..., {CHANNELS}, H, W) images, got {tuple(images.shape)}")
    s = spec(name)
    mean = torch.tensor(s.mean, dtype=torch.float32, device=images.device).view(CHANNELS, 1, 1)
    std = torch.tensor(s.std, dtype=torch.float32, device=images.device).view(CHANNELS, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augment(images: torch.Tensor, g: torch.Generator, pad: int = CROP_PAD) -> torch.Tensor:
    """Random crop with zero padding ``pad``, then a horizontal flip with probability 1/2, per image.

    Each (N, C, H, W) image is zero-padded by ``pad`` on every side and cropped back to H x W at
    an offset (dy, dx) drawn uniformly from 0..2*pad (a shift of -pad..pad); then it is mirrored
    left-right if its flip draw says so. The draws from ``g``, in this order: dy (N), dx (N), flip
    (N); so the result depends only on the images and the generator's state. One gather, no loop.
    """
    n, c, h, w = images.shape
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(images.device)
    flip = (torch.rand(n, generator=g, device=g.device) < FLIP_PROBABILITY).to(images.device)
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h, device=images.device)  # (N, H) rows of the padded image
    cols = dx[:, None] + torch.arange(w, device=images.device)  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # output column j reads crop column W-1-j
    batch = torch.arange(n, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
