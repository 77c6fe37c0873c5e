"""Read an ONNX file for profiling and refuse what is not a model or not safe, before any work:
the bytes (or, for large files, a wire-level walk that leaves weight bytes unread), the IR and opset
versions this onnx understands, external data inside the model's folder, and initializers that hold
exactly the bytes their dims need."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import onnx
from onnx import TensorProto

from effconv.errors import InvalidInputError
from effconv.profile.wire import Malformed, strip_weights
from effconv.sandbox.safety import check_external_data, is_lfs_pointer, tensor_byte_size

STRIP_MIN_FILE = 1 << 20  # bytes: smaller files are read whole (the wire walk would not pay off)


def read_checked(path: Path) -> onnx.ModelProto:
    """The parsed model, refused (InvalidInputError, exit 3) when it is not a safe, readable model."""
    model, raw_lengths = _read_model(path)
    _check_versions(model, path)
    check_external_data(model, path)
    _check_initializers(model, path, raw_lengths)
    return model


def _read_model(path: Path) -> tuple[onnx.ModelProto, Mapping[int, int]]:
    """The parsed model and {initializer index: raw_data length} for the weights left unread
    (effconv.profile.wire). Small files, and any file the wire walk does not understand, are read
    and parsed whole, which also gives the usual error for a broken one."""
    try:
        big = path.is_file() and path.stat().st_size > STRIP_MIN_FILE
    except OSError:
        big = False
    if big and not _lfs_head(path):
        try:
            data, lengths = strip_weights(path)
            return _parse(data, path), lengths
        except (Malformed, OSError, ValueError, InvalidInputError):
            pass
    return _parse(_read_bytes(path), path), {}


def _lfs_head(path: Path) -> bool:
    with open(path, "rb") as fh:
        return is_lfs_pointer(fh.read(64))


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InvalidInputError("no such file", path=path)
    if not path.is_file():
        raise InvalidInputError("is a directory, not an ONNX file", path=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror}", path=path) from exc
    if is_lfs_pointer(data):
        raise InvalidInputError("is a Git LFS pointer, not the model: run `git lfs pull`", path=path)
    if not data:
        raise InvalidInputError("is empty, not an ONNX model", path=path)
    return data


def _parse(data: bytes, path: Path) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, whatever the backend
        raise InvalidInputError("not an ONNX model (protobuf does not parse; truncated?)", path=path) from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise InvalidInputError("not an ONNX model (no IR version, graph or opset)", path=path)
    return model


def _check_versions(model: onnx.ModelProto, path: Path) -> None:
    if model.ir_version > onnx.IR_VERSION:
        raise InvalidInputError(
            f"IR version {model.ir_version} is newer than this onnx {onnx.__version__} supports "
            f"({onnx.IR_VERSION}); upgrade onnx",
            path=path,
        )
    newest = onnx.defs.onnx_opset_version()
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > newest:
            raise InvalidInputError(
                f"opset {op.version} is newer than this onnx {onnx.__version__} supports ({newest}); upgrade onnx",
                path=path,
            )


def _check_initializers(model: onnx.ModelProto, path: Path, raw_lengths: Mapping[int, int]) -> None:
    """Embedded initializers must hold exactly dims x item size bytes, with no negative dim.
    `raw_lengths`: the byte counts of the weights that were never read (by initializer index)."""
    for i, t in enumerate(model.graph.initializer):
        if any(d < 0 for d in t.dims):
            raise InvalidInputError(f"initializer {t.name!r} has a negative dimension {list(t.dims)}", path=path)
        if t.data_location == TensorProto.EXTERNAL:
            continue
        have = raw_lengths[i] if i in raw_lengths else len(t.raw_data)
        need = tensor_byte_size(t) if have else None
        if need is not None and have != need:
            raise InvalidInputError(
                f"initializer {t.name!r} holds {have} bytes where its shape {list(t.dims)} needs {need}",
                path=path,
            )
