"""Where the CIFAR archives come from and how to check and read them: facts only, no torch, so the
Snakefile (which lists the downloads of a run) starts fast. ``data/cifar.py`` reads the archives."""

from __future__ import annotations

from dataclasses import dataclass

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
        return {"train": self.train_members, "test": self.test_members}[check_part(part)]


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


def check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    return part
