"""Checks for files that come from anywhere: ONNX external data and Git LFS pointers.

The pickle scan of checkpoints lives with the checkpoints it guards (effconv.training.pickle_scan,
so that loading a checkpoint imports nothing of the sandbox).

Nothing here executes or deserializes the file it checks: external data is validated from its
metadata and the file's size (never read).
Each check raises InvalidInputError (exit 3) with one line naming the file and the cause.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from effconv.errors import InvalidInputError

LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
# Bytes per element of ONNX TensorProto data types (onnx.TensorProto.DataType values); sub-byte and
# string types are absent: their byte size is not dims x a constant, so `length` is not cross-checked.
ONNX_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8,
                   14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1}
EXTERNAL = 1  # onnx.TensorProto.EXTERNAL (data_location), spelled here to keep this module onnx-free


# Git LFS ------------------------------------------------------------------------------------------
def is_lfs_pointer(head: bytes) -> bool:
    """True when `head` (the first bytes of a file) is a Git LFS pointer, not the real content."""
    return head.startswith(LFS_MAGIC)


def refuse_lfs_pointer(path: str | Path) -> None:
    """InvalidInputError if `path` is a Git LFS pointer (reads its first 64 bytes only)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if is_lfs_pointer(head):
        raise InvalidInputError("is a Git LFS pointer, not the file: run `git lfs pull`", path=path)


# ONNX external data -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExternalRef:
    """One tensor's external data, validated: `file` lies inside the model's folder and holds
    bytes [offset, offset + length) (length: the tensor's byte size when the model omits it)."""

    tensor: str
    file: Path
    offset: int  # bytes
    length: int | None  # bytes; None when neither given nor computable (string/sub-byte types)


def external_tensors(model) -> Iterator:
    """Every TensorProto of `model` stored externally: initializers, Constant values, subgraphs."""
    yield from _graph_external(model.graph)


def _graph_external(graph) -> Iterator:
    for t in graph.initializer:
        if t.data_location == EXTERNAL:
            yield t
    for st in graph.sparse_initializer:
        for t in (st.values, st.indices):
            if t.data_location == EXTERNAL:
                yield t
    for node in graph.node:
        for a in node.attribute:  # whatever a.type claims: every tensor and graph field is looked at
            if a.HasField("t") and a.t.data_location == EXTERNAL:
                yield a.t
            yield from (t for t in a.tensors if t.data_location == EXTERNAL)
            if a.HasField("g"):
                yield from _graph_external(a.g)
            for g in a.graphs:
                yield from _graph_external(g)


def check_external_data(model, model_path: str | Path) -> list[ExternalRef]:
    """Validate every external-data reference of `model` (loaded from `model_path`) without reading it.

    Refused: an empty, absolute or `..` location, a symbolic link anywhere on the way, a missing or
    non-regular file, a non-integer or negative offset/length, a length that differs from the
    tensor's byte size, and a range past the end of the file.
    """
    model_path = Path(model_path)
    folder = model_path.resolve().parent
    return [_check_ref(t, folder, model_path) for t in external_tensors(model)]


def _check_ref(t, folder: Path, model_path: Path) -> ExternalRef:
    info = {_text(e.key, model_path): _text(e.value, model_path) for e in t.external_data}
    loc = info.get("location", "")
    what = f"external data {loc!r} of {t.name!r}"
    target = _inside(loc, folder, what, model_path)
    offset = _int_field(info, "offset", what, model_path)
    length = _int_field(info, "length", what, model_path) if "length" in info else None
    expected = tensor_byte_size(t)
    if length is not None and expected is not None and length != expected:
        raise InvalidInputError(f"{what}: length {length} bytes, but the tensor needs {expected}", path=model_path)
    need = length if length is not None else expected
    size = target.stat().st_size  # the size only: the data is never read here
    if offset + (need or 0) > size:
        raise InvalidInputError(
            f"{what}: bytes {offset}..{offset + (need or 0)} lie past the end of the file ({size} bytes); "
            "the file is shorter than the tensor needs", path=model_path)
    return ExternalRef(t.name, target, offset, need)


def _text(value: str | bytes, model_path: Path) -> str:
    """protobuf hands back bytes for a proto2 string field that is not valid UTF-8."""
    if isinstance(value, bytes):
        raise InvalidInputError("external data entry is not valid UTF-8 text", path=model_path)
    return value


def _inside(loc: str, folder: Path, what: str, model_path: Path) -> Path:
    rel = Path(loc)
    if not loc or "\0" in loc or rel.is_absolute() or loc.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", loc):
        raise InvalidInputError(f"{what} lies outside the model's folder (absolute or empty path)", path=model_path)
    if ".." in rel.parts or ".." in loc.replace("\\", "/").split("/"):
        raise InvalidInputError(f"{what} lies outside the model's folder (`..`)", path=model_path)
    cur = folder
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            raise InvalidInputError(f"{what} is a symbolic link (refused: it could point anywhere)", path=model_path)
    if not cur.exists():
        raise InvalidInputError(f"{what}: the file is missing", path=model_path)
    if not cur.is_file():
        raise InvalidInputError(f"{what} is not a regular file", path=model_path)
    if not cur.resolve().is_relative_to(folder):
        raise InvalidInputError(f"{what} lies outside the model's folder", path=model_path)
    return cur


def _int_field(info: dict, key: str, what: str, model_path: Path) -> int:
    text = info.get(key, "0") or "0"
    if not re.fullmatch(r"\s*\d{1,19}\s*", text):
        raise InvalidInputError(f"{what}: {key} {text[:40]!r} is not a non-negative integer", path=model_path)
    return int(text)


def tensor_byte_size(t) -> int | None:
    """Bytes a TensorProto's data must hold (dims x item size); None for unknown types or bad dims."""
    item = ONNX_ITEM_BYTES.get(t.data_type)
    if item is None:
        return None
    n = item
    for d in t.dims:
        if d < 0:
            return None
        n *= d
    return n
