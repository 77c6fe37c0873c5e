"""CIFAR-10 as uint8 arrays, from whatever the user has: the JPEG archive (.tar.xz), an ImageFolder
tree (JPEG or PNG), the official python release (folder or .tar.gz), or a verified download.

Decoded arrays are cached as .npz in a cache folder ($EFFCONV_CACHE, else ~/.cache/effconv), keyed
by the source's path, size and modification time, so a source is decoded once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from effconv.data import readers
from effconv.data.format import CIFAR10_URL, DOWNLOAD_NAME, PYTHON_FILES, SPLITS, CifarArrays
from effconv.errors import InvalidInputError, UsageError
from effconv.io import atomic_path

CACHE_VERSION = 1  # bump when the decoding changes, so old caches are ignored


def default_cache_dir() -> Path:
    return Path(os.environ.get("EFFCONV_CACHE") or Path.home() / ".cache" / "effconv")


def candidate_sources(data: str | Path | None, cache_dir: Path | None = None) -> list[Path]:
    """Where to look, in order: --data, $EFFCONV_DATA, ../shared/data beside the checkout, the cache."""
    if data is not None:
        return [Path(data)]
    found = [Path(os.environ["EFFCONV_DATA"])] if os.environ.get("EFFCONV_DATA") else []
    checkout = Path(__file__).resolve().parents[2]  # effconv/data/api.py -> the checkout
    found.append(checkout.parent / "shared" / "data" / "cifar10-jpg.tar.xz")
    found.append((cache_dir or default_cache_dir()) / DOWNLOAD_NAME)
    return found


def resolve_source(data: str | Path | None, cache_dir: Path | None = None) -> Path:
    """The first existing source; else one UsageError saying where it looked and how to provide data."""
    looked = candidate_sources(data, cache_dir)
    for path in looked:
        if path.exists():
            return path
    where = ", ".join(str(p) for p in looked)
    raise UsageError(
        f"no CIFAR-10 data found (looked at: {where}); pass --data PATH (the JPEG .tar.xz, an "
        "ImageFolder tree, or the official python folder/.tar.gz), set EFFCONV_DATA, or run with "
        f"--download to fetch {CIFAR10_URL} into the cache"
    )


def load_cifar10(source: str | Path | None, split: str, cache_dir: Path | None = None) -> CifarArrays:
    """Load one split ("train" or "test") from `source` (None: the default search), caching decoded arrays."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    path = resolve_source(source, cache_dir)
    cache = (cache_dir or default_cache_dir()) / f"cifar10-{_fingerprint(path)}.npz"
    if not cache.is_file():
        _write_cache(cache, decode_source(path))
    with np.load(cache, allow_pickle=False) as npz:
        return CifarArrays(npz[f"{split}_images"], npz[f"{split}_labels"], tuple(str(c) for c in npz["classes"]))


def decode_source(path: Path) -> dict[str, CifarArrays]:
    """Decode both splits of any supported source (no cache)."""
    name = path.name.lower()
    if path.is_dir():
        root = readers.find_root(path)
        if all((root / f).is_file() for f in PYTHON_FILES["test"]):
            return readers.read_python_folder(root)
        return readers.read_image_folder(root)
    if not path.is_file():
        raise UsageError("data source not found", path=path)
    if name.endswith((".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar")):
        return readers.read_tar(path)
    raise InvalidInputError("not a CIFAR-10 source (expected a folder, .tar.gz, .tar.xz or .tar)", path=path)


def _fingerprint(path: Path) -> str:
    """Key of a source: resolved path, size and mtime of it (and of every file below a folder)."""
    path = path.resolve()
    parts = [f"v{CACHE_VERSION}", str(path)]
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        parts.append(f"{f.relative_to(path) if f != path else ''}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _write_cache(cache: Path, splits: dict[str, CifarArrays]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"classes": np.array(splits["train"].classes)}
    for split, arr in splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = arr.images, arr.labels
    with atomic_path(cache, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # uncompressed: np.load then reads one split without the other
