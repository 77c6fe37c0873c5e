"""What `effconv profile` reads: an ONNX file as is, or a zoo model (a name or a .toml spec)
exported to ONNX on the fly into a temporary folder that lives as long as the `with` block."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from effconv.errors import UsageError

ONNX_SUFFIXES = (".onnx", ".ort", ".pb")


@dataclass(frozen=True)
class OnnxSource:
    path: Path  # the ONNX file (a temporary one for zoo models: valid inside the `with` block)
    model: str  # display name: the file name, or the zoo spec's name
    spec: object | None = None  # effconv.specs.ModelSpec for zoo models
    input_shape: tuple[int, ...] | None = None  # the export shape for zoo models
    module: object | None = None  # the torch.nn.Module exported, for zoo models


def is_onnx_file(source: str | Path) -> bool:
    p = Path(source)
    return p.exists() and p.suffix != ".toml" or p.suffix.lower() in ONNX_SUFFIXES


@contextlib.contextmanager
def onnx_source(
    source: str | Path,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    batch: int | None = None,
) -> Iterator[OnnxSource]:
    """Yield an OnnxSource for a file, or export a zoo model (batch default 1; one --input-shape
    replaces the spec's shape) with effconv.export.onnx.export_onnx into a temporary folder."""
    if is_onnx_file(source):
        yield OnnxSource(Path(source), Path(source).name)
        return
    try:
        from effconv.specs import load_spec
    except ImportError as exc:  # the zoo is optional for ONNX-only use
        raise UsageError(f"{source}: not a file, and the model zoo is not available ({exc})") from exc
    spec = load_spec(source)
    shape = _export_shape(spec, input_shapes, batch)
    from effconv.export.onnx import export_onnx
    from effconv.zoo import build_model

    with tempfile.TemporaryDirectory(prefix="effconv-profile-") as tmp:
        module = build_model(spec)
        path = export_onnx(module, Path(tmp) / f"{spec.name}.onnx", shape)
        yield OnnxSource(Path(path), spec.name, spec, shape, module)


def _export_shape(spec, input_shapes, batch) -> tuple[int, ...]:
    if input_shapes:
        if len(input_shapes) != 1:
            raise UsageError(f"{spec.name} has one input; give at most one --input-shape")
        shape = tuple(next(iter(input_shapes.values())))
        if batch is not None:
            shape = (batch, *shape[1:])
        return shape
    return tuple(spec.input_shape(batch or 1))
