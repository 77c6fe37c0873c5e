"""Decoders behind effconv.data.api.decode_source: ImageFolder trees, tar archives (of images or of
the official python batches) and the official python folder. Each returns {"train": ..., "test": ...}.

Images are sorted by (class, file name), so the arrays do not depend on the archive's member order.
Large sets are decoded by a pool of worker processes (Pillow holds the GIL while decoding JPEG).

Trust: the official python release IS a pickle. It is read only from paths the user names (or from
the archive effconv downloaded and checked), and through an unpickler that allows nothing but the
numpy array constructors, so a hostile file fails instead of running code.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path, PurePosixPath

import numpy as np

from effconv.data.format import CLASSES, IMAGE_SUFFIXES, PYTHON_FILES, SPLITS, CifarArrays
from effconv.errors import InvalidInputError

CHUNK = 2500  # images per decode task: big enough to amortise the pool, small enough to balance
POOL_MIN = 4000  # fewer images than this are decoded in-process (a pool costs ~0.5 s to start)


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


def find_root(path: Path) -> Path:
    """`path` itself if it holds the data, else its single sub-folder that does (e.g. cifar10-jpg/)."""
    if _holds_data(path):
        return path
    subs = [p for p in path.iterdir() if p.is_dir()]
    if len(subs) == 1 and _holds_data(subs[0]):
        return subs[0]
    raise InvalidInputError(
        "no CIFAR-10 here: expected train/ and test/ class folders or the official python batches", path=path
    )


def _holds_data(path: Path) -> bool:
    return (path / "test_batch").is_file() or all((path / s).is_dir() for s in SPLITS)


def read_python_folder(root: Path) -> dict[str, CifarArrays]:
    blobs = {}
    for name in [*PYTHON_FILES["train"], *PYTHON_FILES["test"]]:
        if not (root / name).is_file():
            raise InvalidInputError(f"official python release is missing {name}", path=root)
        blobs[name] = (root / name).read_bytes()
    return _python_splits(blobs, root)


def _python_splits(blobs: dict[str, bytes], origin: Path) -> dict[str, CifarArrays]:
    out = {}
    for split, names in PYTHON_FILES.items():
        images, labels = [], []
        for name in names:
            batch = unpickle_batch(blobs[name], origin / name)
            try:
                data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                labels.append(np.asarray(batch["labels"], dtype=np.int64))
            except (KeyError, ValueError) as exc:
                raise InvalidInputError(f"malformed CIFAR-10 batch ({exc})", path=origin / name) from exc
            images.append(data.transpose(0, 2, 3, 1))  # the official layout is CHW planes
        out[split] = _checked(np.concatenate(images), np.concatenate(labels), CLASSES, origin)
    return out


def read_image_folder(root: Path) -> dict[str, CifarArrays]:
    """root/{train,test}/<class>/<image>.{jpg,jpeg,png}."""
    entries = {}
    for split in SPLITS:
        for f in (root / split).glob("*/*"):
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
                entries[(split, f.parent.name, f.name)] = f
    return _decode_entries({k: v.read_bytes() for k, v in entries.items()}, root)


def read_tar(path: Path) -> dict[str, CifarArrays]:
    """A tar (any compression) of an ImageFolder tree or of the official python release."""
    images, batches = {}, {}
    python_names = {*PYTHON_FILES["train"], *PYTHON_FILES["test"]}
    try:
        with tarfile.open(path, "r|*") as tar:  # stream mode: one pass, constant memory per member
            for member in tar:
                key = _image_key(member) if member.isfile() else None
                name = PurePosixPath(member.name).name
                if key is not None:
                    images[key] = tar.extractfile(member).read()
                elif member.isfile() and name in python_names:
                    batches[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInputError(f"cannot read the archive ({exc})", path=path) from exc
    if batches:
        missing = python_names - set(batches)
        if missing:
            raise InvalidInputError(f"archive lacks {', '.join(sorted(missing))}", path=path)
        return _python_splits(batches, path)
    return _decode_entries(images, path)


def _image_key(member: tarfile.TarInfo) -> tuple[str, str, str] | None:
    """(split, class, file) for .../<split>/<class>/<file>.jpg members; None for anything else."""
    parts = PurePosixPath(member.name).parts
    if len(parts) < 3 or PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    return (parts[-3], parts[-2], parts[-1]) if parts[-3] in SPLITS else None


def _decode_entries(entries: dict[tuple[str, str, str], bytes], origin: Path) -> dict[str, CifarArrays]:
    classes = _class_order({k[1] for k in entries}, origin)
    out = {}
    for split in SPLITS:
        keys = sorted((k for k in entries if k[0] == split), key=lambda k: (classes.index(k[1]), k[2]))
        if not keys:
            raise InvalidInputError(f"no {split} images found", path=origin)
        images = decode_images([entries[k] for k in keys], origin)
        labels = np.array([classes.index(k[1]) for k in keys], dtype=np.int64)
        out[split] = _checked(images, labels, classes, origin)
    return out


def _class_order(names: set[str], origin: Path) -> tuple[str, ...]:
    """The official order when the folders are the CIFAR-10 names, else alphabetical."""
    if len(names) != len(CLASSES):
        raise InvalidInputError(f"expected 10 class folders, found {len(names)}", path=origin)
    return CLASSES if names == set(CLASSES) else tuple(sorted(names))


def decode_images(blobs: list[bytes], origin: Path) -> np.ndarray:
    """Decode encoded 32x32 images into uint8 [N, 32, 32, 3]; a pool of processes for large sets."""
    chunks = [blobs[i : i + CHUNK] for i in range(0, len(blobs), CHUNK)]
    workers = min(os.cpu_count() or 1, len(chunks))
    if len(blobs) < POOL_MIN or workers < 2:
        parts = [_decode_chunk(c) for c in chunks]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_decode_chunk, chunks))
    for part in parts:
        if isinstance(part, str):
            raise InvalidInputError(part, path=origin)
    return np.concatenate(parts)


def _decode_chunk(blobs: list[bytes]) -> np.ndarray | str:
    """Runs in a worker: returns the arrays, or an error line (exceptions do not pickle reliably)."""
    from PIL import Image

    out = np.empty((len(blobs), 32, 32, 3), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as im:
                if im.size != (32, 32):
                    return f"an image is {im.size[0]}x{im.size[1]}, not 32x32"
                out[i] = np.asarray(im.convert("RGB"))
        except OSError as exc:
            return f"cannot decode an image ({exc})"
    return out


def _checked(images: np.ndarray, labels: np.ndarray, classes, origin: Path) -> CifarArrays:
    if len(images) != len(labels) or images.shape[1:] != (32, 32, 3):
        raise InvalidInputError(f"images {images.shape} do not match labels {labels.shape}", path=origin)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise InvalidInputError("a label is outside 0..9", path=origin)
    return CifarArrays(np.ascontiguousarray(images), labels, tuple(classes))
