"""CIFAR-10/100 from the official binary archives: the published digests, verified download, exact
decoding of the record layout, refusal of wrong, tampered, truncated or incomplete archives, and
the normalization and training augmentation.

Every archive here is a small fake in the official format that the test writes and serves through a
file:// URL: nothing is downloaded from the network.
"""

import dataclasses
import hashlib
import io
import tarfile

import numpy as np
import pytest
import torch

from implicit_repro.data import cifar
from implicit_repro.data.download import check_sha256_format
from implicit_repro.errors import DatasetError

RECORDS = {"train": 3, "test": 2}  # records per member


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_images(n: int, seed: int) -> np.ndarray:
    """(n, 3, 32, 32) uint8 whose every pixel differs from its neighbours in channel, row and col."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return np.stack([(seed * 31 + i * 7 + c * 85 + y * 5 + x) % 256 for i in range(n)]).astype(np.uint8)


def encode(label_bytes: np.ndarray, images: np.ndarray) -> bytes:
    """Records in the official layout: the label byte(s), then the R, G and B planes, row-major."""
    return b"".join(bytes(lb) + img.tobytes() for lb, img in zip(label_bytes, images))


def write_tar(path, members: dict[str, bytes]):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo(next(iter(members)).split("/")[0])
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_members(name: str, seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """The members of a fake archive of ``name``, and per part the expected images and labels."""
    s = cifar.CIFAR[name]
    members, expected = {}, {}
    for part in cifar.PARTS:
        images, labels = [], []
        for k, member in enumerate(s.members(part)):
            n = RECORDS[part]
            img = fake_images(n, seed=seed + 10 * k + (part == "test") * 100)
            fine = (np.arange(n) + 3 * k + (part == "test") * 5) % s.classes
            if s.label_bytes == 1:
                label_bytes = fine[:, None]
            else:  # coarse label first, always different from the fine one
                label_bytes = np.stack([(fine + 7) % 20, fine], axis=1)
            members[member] = encode(label_bytes.astype(np.uint8), img)
            images.append(img)
            labels.append(fine)
        expected[part] = (np.concatenate(images), np.concatenate(labels))
    meta = "cifar-10-batches-bin/batches.meta.txt" if name == "cifar10" else "cifar-100-binary/fine_label_names.txt"
    members[meta] = b"label names\n"  # a member read by neither part
    return members, expected


@pytest.fixture(params=["cifar10", "cifar100"])
def archive(request, tmp_path):
    """(name, path of a fake archive, its digest, expected images and labels per part)."""
    name = request.param
    members, expected = fake_members(name)
    path = write_tar(tmp_path / "remote" / cifar.CIFAR[name].archive, members)
    return name, path, sha256(path), expected


def use_digest(monkeypatch, name: str, digest: str):
    monkeypatch.setitem(cifar.CIFAR, name, dataclasses.replace(cifar.CIFAR[name], sha256=digest))


# ---------------------------------------------------------------- the specs


def test_specs_hold_published_digests_and_formats():
    assert set(cifar.CIFAR) == {"cifar10", "cifar100"}
    for s in cifar.CIFAR.values():
        assert check_sha256_format(s.sha256, s.archive) == s.sha256
        assert s.url == f"https://www.cs.toronto.edu/~kriz/{s.archive}"
        assert s.size > 100_000_000 and len(s.mean) == len(s.std) == 3
    c10, c100 = cifar.CIFAR["cifar10"], cifar.CIFAR["cifar100"]
    assert (c10.classes, c10.label_bytes, c10.record_bytes) == (10, 1, 3073)
    assert (c100.classes, c100.label_bytes, c100.record_bytes) == (100, 2, 3074)
    assert c10.archive == "cifar-10-binary.tar.gz" and c100.archive == "cifar-100-binary.tar.gz"
    assert c10.train_members == tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6))
    assert c10.test_members == ("cifar-10-batches-bin/test_batch.bin",)
    assert (c100.train_members, c100.test_members) == (("cifar-100-binary/train.bin",), ("cifar-100-binary/test.bin",))
    # The digests tensorflow_datasets publishes in url_checksums/cifar10.txt and cifar100.txt.
    assert c10.sha256.startswith("c4a38c50") and c100.sha256.startswith("58a81ae1")


def test_unknown_name_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(DatasetError, match="cifar10, cifar100"):
        cifar.download_cifar("cifar1000", tmp_path)
    with pytest.raises(DatasetError, match="cifar10, cifar100"):
        cifar.read_cifar(tmp_path / "x.tar.gz", "svhn", "train", "0" * 64)


# ---------------------------------------------------------------- download and read


def test_download_then_read_gives_the_exact_records(archive, tmp_path, monkeypatch):
    name, remote, digest, expected = archive
    use_digest(monkeypatch, name, digest)
    out = tmp_path / "raw"
    path = cifar.download_cifar(name, out, url=remote.as_uri())
    assert path == out / cifar.CIFAR[name].archive and path.read_bytes() == remote.read_bytes()
    assert cifar.download_cifar(name, out, url=(tmp_path / "gone").as_uri()) == path  # kept: no refetch
    for part in cifar.PARTS:
        images, labels = cifar.read_cifar(path, name, part, digest)
        want_images, want_labels = expected[part]
        assert images.dtype == torch.uint8 and images.shape == (len(want_labels), 3, 32, 32)
        assert labels.dtype == torch.int64
        assert torch.equal(images, torch.from_numpy(want_images))
        assert labels.tolist() == want_labels.tolist()  # the fine label, batches in order
    n_train = RECORDS["train"] * len(cifar.CIFAR[name].train_members)
    assert len(cifar.read_cifar(path, name, "train", digest)[1]) == n_train


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_record_layout_is_label_then_red_green_blue_planes_row_major(name, tmp_path):
    """One record written byte by byte: the offsets, not a reshape, say where each pixel is."""
    s = cifar.CIFAR[name]
    record = bytearray(s.record_bytes)
    record[: s.label_bytes] = bytes([11, 42]) if s.label_bytes == 2 else bytes([7])  # coarse 11, fine 42
    base = s.label_bytes
    record[base + 0] = 10  # R, row 0, col 0
    record[base + 1] = 11  # R, row 0, col 1
    record[base + 32] = 12  # R, row 1, col 0
    record[base + 32 * 5 + 3] = 13  # R, row 5, col 3
    record[base + 1024] = 20  # G, row 0, col 0
    record[base + 2048 + 32 * 31 + 30] = 30  # B, row 31, col 30
    members = {m: bytes(record) for m in s.test_members + s.train_members}
    path = write_tar(tmp_path / s.archive, members)
    images, labels = cifar.read_cifar(path, name, "test", sha256(path))
    img = images[0]
    assert labels.tolist() == [42 if s.label_bytes == 2 else 7]  # cifar-100: fine (42), not coarse (11)
    assert (img[0, 0, 0], img[0, 0, 1], img[0, 1, 0], img[0, 5, 3]) == (10, 11, 12, 13)
    assert (img[1, 0, 0], img[2, 31, 30]) == (20, 30)
    assert int(img.sum()) == 10 + 11 + 12 + 13 + 20 + 30


def test_wrong_digest_is_refused_naming_the_file(archive, tmp_path, monkeypatch):
    name, remote, digest, _ = archive
    wrong = "0" * 64
    with pytest.raises(DatasetError, match=remote.name) as err:
        cifar.read_cifar(remote, name, "test", wrong)
    assert "SHA-256" in str(err.value)
    use_digest(monkeypatch, name, wrong)
    out = tmp_path / "raw"
    with pytest.raises(DatasetError, match="SHA-256"):
        cifar.download_cifar(name, out, url=remote.as_uri())
    assert not out.exists() or list(out.iterdir()) == []  # neither the archive nor a temporary file


def test_tampered_archive_is_refused_before_it_is_opened(archive, tmp_path, monkeypatch):
    name, remote, digest, _ = archive
    use_digest(monkeypatch, name, digest)
    path = cifar.download_cifar(name, tmp_path / "raw", url=remote.as_uri())
    members, _ = fake_members(name, seed=1)  # a valid archive with other pixels: only the digest tells
    write_tar(path, members)
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    with pytest.raises(DatasetError, match="SHA-256"):
        cifar.read_cifar(path, name, "train", digest)
    assert opened == []
    with pytest.raises(DatasetError, match="SHA-256"):  # and it is not replaced by a new download
        cifar.download_cifar(name, tmp_path / "raw", url=remote.as_uri())


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_truncated_member_is_refused_naming_it(name, tmp_path):
    s = cifar.CIFAR[name]
    members, _ = fake_members(name)
    victim = s.train_members[-1]
    members[victim] = members[victim][:-5]
    path = write_tar(tmp_path / s.archive, members)
    cifar.read_cifar(path, name, "test", sha256(path))  # the other part is intact
    with pytest.raises(DatasetError, match=victim) as err:
        cifar.read_cifar(path, name, "train", sha256(path))
    assert "Delete it and download it again" in str(err.value) and path.name in str(err.value)


def test_cifar100_records_with_one_label_byte_are_refused(tmp_path):
    """2 records of CIFAR-10 size (6,146 bytes) are not a whole number of CIFAR-100 records."""
    s = cifar.CIFAR["cifar100"]
    members = {m: bytes(2 * 3073) for m in s.train_members + s.test_members}
    path = write_tar(tmp_path / s.archive, members)
    with pytest.raises(DatasetError, match="cifar-100-binary/test.bin"):
        cifar.read_cifar(path, "cifar100", "test", sha256(path))


@pytest.mark.parametrize("name,part", [("cifar10", "train"), ("cifar10", "test"), ("cifar100", "train")])
def test_missing_member_is_refused_naming_it(name, part, tmp_path):
    s = cifar.CIFAR[name]
    members, _ = fake_members(name)
    victim = s.members(part)[-2 if part == "train" and name == "cifar10" else 0]
    del members[victim]
    path = write_tar(tmp_path / s.archive, members)
    with pytest.raises(DatasetError, match=victim) as err:
        cifar.read_cifar(path, name, part, sha256(path))
    assert "download it again" in str(err.value)


def test_label_beyond_the_classes_is_refused(tmp_path):
    s = cifar.CIFAR["cifar10"]
    members, _ = fake_members("cifar10")
    members[s.test_members[0]] = encode(np.array([[3], [10]], dtype=np.uint8), fake_images(2, 0))
    path = write_tar(tmp_path / s.archive, members)
    with pytest.raises(DatasetError, match="10 classes"):
        cifar.read_cifar(path, "cifar10", "test", sha256(path))


def test_not_a_tar_is_refused(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(b"not a gzip file at all")
    with pytest.raises(DatasetError, match="not a readable tar.gz"):
        cifar.read_cifar(path, "cifar10", "test", sha256(path))


def test_bad_part_is_refused(archive):
    name, path, digest, _ = archive
    with pytest.raises(ValueError, match="part"):
        cifar.read_cifar(path, name, "validation", digest)


# ---------------------------------------------------------------- normalize


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_normalize_uses_each_channels_mean_and_std(name, monkeypatch):
    s = cifar.CIFAR[name]
    values = (100, 128, 200)
    images = torch.tensor(values, dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 5).contiguous()
    out = cifar.normalize(images, name)
    assert out.dtype == torch.float32 and out.shape == images.shape
    for c in range(3):
        assert torch.allclose(out[:, c], torch.tensor((values[c] / 255 - s.mean[c]) / s.std[c]), atol=1e-6)
    # A channel equal to its mean maps to 0 (means set to byte values, so equality is exact).
    monkeypatch.setitem(cifar.CIFAR, name, dataclasses.replace(s, mean=tuple(v / 255 for v in values)))
    assert torch.allclose(cifar.normalize(images, name), torch.zeros(()), atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        cifar.normalize(images.float(), name)


# ---------------------------------------------------------------- augment


def candidates(images: torch.Tensor, pad: int = 4) -> dict[tuple[int, int, bool], torch.Tensor]:
    """Every shift (sy, sx) in -pad..pad and flip of the batch, zeros filling, by plain slicing."""
    n, c, h, w = images.shape
    out = {}
    for sy in range(-pad, pad + 1):
        for sx in range(-pad, pad + 1):
            shifted = torch.zeros_like(images)  # shifted[y, x] = images[y + sy, x + sx] where inside
            shifted[..., max(0, -sy): h - max(0, sy), max(0, -sx): w - max(0, sx)] = \
                images[..., max(0, sy): h - max(0, -sy), max(0, sx): w - max(0, -sx)]
            out[sy, sx, False] = shifted
            out[sy, sx, True] = shifted.flip(-1)
    return out


def matches(images: torch.Tensor, augmented: torch.Tensor) -> list[tuple[int, int, bool]]:
    """The one (shift, flip) each augmented image is a copy of; fails if not exactly one."""
    cands = candidates(images)
    keys = list(cands)
    equal = torch.stack([(cands[k] == augmented).flatten(1).all(1) for k in keys])  # (K, N)
    assert (equal.sum(0) == 1).all(), "an augmented image is no shifted (<= 4) and/or flipped copy"
    return [keys[i] for i in equal.int().argmax(0).tolist()]


@pytest.mark.parametrize("shape", [(512, 3, 8, 8), (64, 3, 32, 32), (64, 2, 5, 7)])
def test_augment_is_a_zero_filled_shift_and_flip_of_each_image(shape):
    images = torch.rand(shape, generator=torch.Generator().manual_seed(0)) + 0.5  # never 0
    out = cifar.augment(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == images.dtype
    found = matches(images, out)
    if shape[0] >= 512:
        assert {sy for sy, _, _ in found} == set(range(-4, 5))  # every shift, both extremes included
        assert {sx for _, sx, _ in found} == set(range(-4, 5))
        assert len({(sy, sx) for sy, sx, _ in found}) >= 70  # of 81: the two offsets are drawn apart
        flipped = sum(f for _, _, f in found) / len(found)
        assert 0.4 < flipped < 0.6


def test_augment_is_determined_by_the_generator():
    images = torch.rand(128, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = cifar.augment(images, torch.Generator().manual_seed(5))
    b = cifar.augment(images, torch.Generator().manual_seed(5))
    c = cifar.augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(5)
    first, second = cifar.augment(images, g), cifar.augment(images, g)
    assert torch.equal(first, a) and not torch.equal(first, second)  # the generator advances
