"""Verified download of the official CIFAR-10 archive into the cache: a temporary file, a checksum
against the published one, then a rename, so a partial or tampered download never looks done."""

from __future__ import annotations

import hashlib
from pathlib import Path

from effconv.data.api import default_cache_dir
from effconv.data.format import CIFAR10_MD5, CIFAR10_URL, DOWNLOAD_NAME
from effconv.errors import InvalidInputError, UsageError
from effconv.io import atomic_path


def download_cifar10(
    cache_dir: Path | None = None,
    *,
    url: str = CIFAR10_URL,
    md5: str | None = CIFAR10_MD5,
    sha256: str | None = None,
    fetch=None,
) -> Path:
    """Download `url` into the cache (temporary file, checksum, then rename); return the archive path.

    `fetch(url, dest)` writes the url's bytes to `dest` (default: urllib, which also reads file://).
    A checksum mismatch deletes the partial file and raises InvalidInputError (exit 3).
    """
    target = (cache_dir or default_cache_dir()) / DOWNLOAD_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".part") as tmp:
        (fetch or _urllib_fetch)(url, tmp)
        for algo, want in (("md5", md5), ("sha256", sha256)):
            if want and _digest(tmp, algo) != want.lower():
                raise InvalidInputError(f"{algo} checksum mismatch for the download from {url}", path=target)
    return target


def _urllib_fetch(url: str, dest: Path) -> None:
    import shutil
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out, length=1 << 20)
    except OSError as exc:  # URLError is an OSError
        raise UsageError(f"download of {url} failed: {exc}") from exc


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
