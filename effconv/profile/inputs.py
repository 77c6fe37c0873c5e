"""The model's real inputs at the shapes a profile uses: `--input-shape` and `--batch` applied to
the skeleton's graph inputs before the checker and shape inference see them (effconv.profile.graph).

A symbolic batch dim defaults to 1, with a note; any other symbolic dim left is refused with what to
type; `--input-shape` may set symbolic dims and the batch, never contradict a static dim.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from effconv.errors import UsageError
from effconv.profile.model import Shape


def declared_dims(vi: onnx.ValueInfoProto) -> Shape | None:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    # dim_value 0 means "not set" here: a zero-sized dim is not a shape a CNN profile can use
    return tuple(d.dim_value or d.dim_param or None for d in tt.shape.dim)


def set_input_shapes(sk, real_names, shapes, batch, path: Path) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Apply --input-shape / --batch to the real inputs; a symbolic batch dim defaults to 1; refuse
    other symbolic dims that remain and static dims that --input-shape contradicts."""
    wanted = set(real_names)
    real = [vi for vi in sk.graph.input if vi.name in wanted]
    unknown = set(shapes) - {vi.name for vi in real}
    if unknown:
        names = ", ".join(vi.name for vi in real) or "none"
        raise UsageError(f"--input-shape names unknown input(s) {sorted(unknown)}; inputs are: {names}", path=path)
    out, missing, notes = {}, [], []
    for vi in real:
        declared = declared_dims(vi)
        dims = list(declared or ())
        if declared is None and vi.name not in shapes:
            missing.append(f"{vi.name}[?] (no shape)")
        if vi.name in shapes:
            dims = _override(vi.name, declared, shapes[vi.name], path)
        elif dims and (batch is not None or not (isinstance(dims[0], int) and dims[0] > 0)):
            if batch is None and len(dims) > 1:
                notes.append(f"input {vi.name!r} has a symbolic batch dim ({dims[0] or '?'}): profiled at batch 1 "
                             "(--batch N to change)")
            dims[0] = batch if batch is not None else 1
        missing += [f"{vi.name}[{i}]={d or '?'}" for i, d in enumerate(dims) if not isinstance(d, int) or d <= 0]
        if vi.type.tensor_type.HasField("shape") or vi.name in shapes:
            _write_dims(vi, dims)
        out[vi.name] = tuple(dims)
    if missing:
        raise UsageError(
            f"symbolic input dimensions {', '.join(missing)}: set them with --input-shape NAME=1x3x224x224 or --batch N",
            path=path,
        )
    return out, notes


def _override(name: str, declared: Shape | None, wanted: tuple[int, ...], path: Path) -> list:
    """--input-shape NAME=...: same rank as declared; static non-batch dims must agree (as ONNX
    Runtime requires of the tensors it is fed)."""
    if declared:
        if len(declared) != len(wanted):
            raise UsageError(f"--input-shape {name}: model input has rank {len(declared)}", path=path)
        for i, (d, w) in enumerate(zip(declared, wanted)):
            if i and isinstance(d, int) and d > 0 and d != w:
                shown = "x".join(str(x or "?") for x in declared)
                raise UsageError(f"--input-shape {name}: dim {i} is {w}, but the model declares {shown} "
                                 f"(only symbolic dims and the batch can be set)", path=path)
    return list(wanted)


def _write_dims(vi: onnx.ValueInfoProto, dims: list) -> None:
    shape = vi.type.tensor_type.shape
    shape.ClearField("dim")
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int) and d > 0:
            dim.dim_value = d
        elif d:
            dim.dim_param = str(d)
