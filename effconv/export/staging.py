"""All-or-nothing multi-file outputs and ONNX external data.

An export can produce several files (model.onnx, model.onnx.data, model.engine, its sidecar). They
are first written into a hidden staging folder inside the output folder (same file system, so the
final renames are atomic), checked there, and moved into place only when every check passed. The
staging folder is removed whatever happens, so a failed export leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from effconv.errors import UsageError
from effconv.io import atomic_path

# Weights above this many bytes go to an external data file. Protobuf refuses messages over 2 GiB;
# 1 GiB of weights leaves headroom for the graph and for protobuf's own serialization copies.
DEFAULT_EXTERNAL_DATA_THRESHOLD = 1 << 30
EXTERNAL_DATA_SUFFIX = ".data"


@contextlib.contextmanager
def staging_dir(target_folder: Path) -> Iterator[Path]:
    """Yield a fresh hidden folder inside `target_folder`; remove it (and anything left) on exit."""
    if not target_folder.is_dir():
        raise UsageError("output folder does not exist", path=target_folder)
    try:
        stage = Path(tempfile.mkdtemp(prefix=".effconv-export-", dir=target_folder))
    except PermissionError as exc:
        raise UsageError("output folder is not writable", path=target_folder) from exc
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def commit(staged: Iterable[Path], target_folder: Path) -> tuple[Path, ...]:
    """Move staged files into `target_folder` under the same names, in the order given.

    Put the files that others refer to first (external data before the model, the model before
    the engine), so a reader never sees a reference to a file that is not there yet.
    """
    placed = []
    for src in staged:
        dest = target_folder / src.name
        with atomic_path(dest) as tmp:
            os.replace(src, tmp)
        placed.append(dest)
    return tuple(placed)


def tensor_bytes(model) -> int:
    """Bytes held by the model's initializers and tensor-valued Constant nodes (raw or typed)."""
    total = 0
    for init in model.graph.initializer:
        total += _one_tensor_bytes(init)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                total += _one_tensor_bytes(attr.t)
    return total


def _one_tensor_bytes(tensor) -> int:
    if tensor.raw_data:
        return len(tensor.raw_data)
    return tensor.ByteSize()


def save_onnx(model, path: Path, threshold: int = DEFAULT_EXTERNAL_DATA_THRESHOLD) -> tuple[Path, ...]:
    """Save `model` to `path`; weights go to `<name>.data` beside it when over `threshold` bytes.

    Returns the files written, external data first. The location stored in the model is the bare
    file name, so the pair can be moved together and never points outside its folder.
    """
    import onnx

    if tensor_bytes(model) <= threshold:
        onnx.save_model(model, str(path))
        return (path,)
    data = path.with_name(path.name + EXTERNAL_DATA_SUFFIX)
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024, convert_attribute=True)
    return (data, path)
