"""CIFAR-10 as uint8 arrays, from whatever the user has: the JPEG archive (.tar.xz), an ImageFolder
tree (JPEG or PNG), the official python release (folder or .tar.gz), or a verified download.

Decoded arrays are cached as .npz in a cache folder ($EFFCONV_CACHE, else ~/.cache/effconv), keyed
by the source's path, size and modification time, so a source is decoded once.

Trust: the official python release IS a pickle. It is read only from paths the user names (or from
the archive effconv downloaded and checked), and through an unpickler that allows nothing but the
numpy array constructors, so a hostile file fails instead of running code.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effconv.errors import InvalidInputError, UsageError
from effconv.io import atomic_path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and standard deviation of the 50,000 training images, 0-1 scale (RGB).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PYTHON_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published beside the official archive
DOWNLOAD_NAME = "cifar-10-python.tar.gz"
CACHE_VERSION = 1  # bump when the decoding changes, so old caches are ignored


@dataclass(frozen=True)
class CifarArrays:
    """One split: `images` uint8 [N, 32, 32, 3] (RGB, HWC), `labels` int64 [N], class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EFFCONV_CACHE") or Path.home() / ".cache" / "effconv")


def candidate_sources(data: str | Path | None, cache_dir: Path | None = None) -> list[Path]:
    """Where to look, in order: --data, $EFFCONV_DATA, ../shared/data beside the checkout, the cache."""
    if data is not None:
        return [Path(data)]
    found = [Path(os.environ["EFFCONV_DATA"])] if os.environ.get("EFFCONV_DATA") else []
    checkout = Path(__file__).resolve().parents[1]
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
    from effconv.training import readers

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


# Verified download ------------------------------------------------------------------------------
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


# Restricted unpickling of the official python release ---------------------------------------------
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell a bytes object
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        if module == "numpy.core.multiarray":  # numpy 2 moved it; the official files use the old name
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def unpickle_batch(blob: bytes, origin: str | Path) -> dict:
    """Read one official CIFAR-10 batch; keys come back as str. Only arrays and plain data allowed."""
    try:
        obj = _CifarUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:
        raise InvalidInputError(f"not a CIFAR-10 python batch ({exc})", path=origin) from exc
    if not isinstance(obj, dict):
        raise InvalidInputError("not a CIFAR-10 python batch (not a dict)", path=origin)
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}

