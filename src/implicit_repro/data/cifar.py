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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from implicit_repro.data.download import download, verify_sha256
from implicit_repro.errors import DatasetError

CHANNELS = 3
SIDE = 32
IMAGE_BYTES = CHANNELS * SIDE * SIDE
PARTS = ("train", "test")
CROP_PAD = 4
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class CifarSpec:
    """One dataset: where its archive comes from, how to check it and how to read it."""

    archive: str  # file name of the archive, also the last part of the URL
    url: str
    sha256: str
    size: int  # bytes of the archive, as published with the digest
    train_members: tuple[str, ...]  # read and concatenated in this order
    test_members: tuple[str, ...]
    label_bytes: int  # label bytes before each image; the last one is the label we use
    classes: int
    mean: tuple[float, float, float]  # per channel (R, G, B), of pixel values scaled to [0, 1]
    std: tuple[float, float, float]

    @property
    def record_bytes(self) -> int:
        return self.label_bytes + IMAGE_BYTES

    def members(self, part: str) -> tuple[str, ...]:
        return {"train": self.train_members, "test": self.test_members}[_check_part(part)]


# The mean and std are the per-channel statistics of each training set's 50,000 images (pixels
# scaled to [0, 1], std over all pixels of a channel), the values the field normalizes with; they
# are recorded here, not recomputed, so that normalization never depends on which data was read.
CIFAR: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        archive="cifar-10-binary.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        # tensorflow/datasets: tensorflow_datasets/url_checksums/cifar10.txt (170,052,171 bytes)
        sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        size=170_052_171,
        train_members=tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
        test_members=("cifar-10-batches-bin/test_batch.bin",),
        label_bytes=1,
        classes=10,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": CifarSpec(
        archive="cifar-100-binary.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        # tensorflow/datasets: tensorflow_datasets/url_checksums/cifar100.txt (168,513,733 bytes)
        sha256="58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
        size=168_513_733,
        train_members=("cifar-100-binary/train.bin",),
        test_members=("cifar-100-binary/test.bin",),
        label_bytes=2,  # coarse label, then fine label: we use the fine one
        classes=100,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}


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


def _check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    return part


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
