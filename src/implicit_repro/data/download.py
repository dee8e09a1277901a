"""The one way data enters from the network: an explicit download checked against a SHA-256.

A file is opened only after its digest matches the one the config gives, so a corrupt, truncated
or tampered download is refused before any parser (gzip, IDX) sees a byte of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.request
from pathlib import Path

from implicit_repro.errors import DatasetError
from implicit_repro.io import atomic_path

_HEX64 = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20


def check_sha256_format(sha256: str, what: str) -> str:
    digest = str(sha256).strip().lower()
    if not _HEX64.fullmatch(digest):
        raise DatasetError(f"{what}: expected a SHA-256 digest (64 hex characters), got {sha256!r}.")
    return digest


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:  # raw bytes only: hashing never parses the content
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, sha256: str) -> Path:
    """Return ``path`` if its digest is ``sha256``; otherwise raise without opening it further."""
    path = Path(path)
    expected = check_sha256_format(sha256, str(path))
    if not path.is_file():
        raise DatasetError(
            f"{path}: not found. Download it first: `snakemake {path}` fetches it and checks its SHA-256."
        )
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetError(
            f"{path}: SHA-256 {actual} does not match the expected {expected}; refusing to open it. "
            f"Delete the file and download it again, or correct the checksum in the config."
        )
    return path


def download(url: str, dest: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with the right digest is already there.

    The bytes go to a temporary name and are renamed onto ``dest`` only after the digest matches,
    so a failed or wrong download leaves nothing under the real name. An existing ``dest`` with
    the wrong digest is an error, not silently replaced: someone put it there.
    """
    dest = Path(dest)
    expected = check_sha256_format(sha256, str(dest))
    if dest.exists():
        return verify_sha256(dest, expected)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, CHUNK)
        except OSError as exc:  # URLError, HTTPError, timeouts and a missing file:// source
            raise DatasetError(
                f"{url}: cannot be fetched ({exc}); nothing written to {dest}. Check the network and "
                f"the base URL in the config."
            ) from exc
        actual = sha256_of(tmp)
        if actual != expected:
            raise DatasetError(
                f"{url}: downloaded bytes have SHA-256 {actual}, expected {expected}; discarded, "
                f"nothing written to {dest}. Check the URL and the checksum in the config."
            )
    return dest
