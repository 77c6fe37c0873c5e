"""The input shapes a timed ONNX file runs at: `--input-shape NAME=DxD...` and `--batch` applied to
the dims the file declares, by one policy for every runtime (ONNX Runtime's feeds, OpenVINO's
reshape, the graph the per-layer methods cut, the static profile joined in).

- A given shape sets symbolic dims; it may not contradict a static one (the batch included: a
  runtime cannot feed 4 images to an input declared for 1), nor change the rank.
- An input without a given shape takes `--batch` in a symbolic first dim; any other symbolic dim
  left is an error that says which `--input-shape` to pass.

`resolve_input_shapes` reads the file's declared inputs (no weights, no external data) and returns
every input's concrete shape, before anything is loaded for timing; the runners then use those
shapes as they are (`LatencyOptions.input_shapes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from effconv.errors import InvalidInputError, UsageError

Shapes = tuple[tuple[str, tuple[int, ...]], ...]  # ((input name, dims), ...), in the file's order


def _static(dim: object) -> bool:
    return isinstance(dim, int) and not isinstance(dim, bool) and dim > 0


def shown(dims: Sequence[object]) -> str:
    """1x3x224x224; a symbolic dim by its name, an unknown one as ?."""
    return "x".join(str(d) if _static(d) or (isinstance(d, str) and d) else "?" for d in dims)


def concrete_shape(name: str, declared: Sequence[object] | None, batch: int,
                   wanted: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The shape input `name` runs at. `declared`: its dims as the runtime or file states them
    (a positive int is static; a str, None, 0 or -1 symbolic), None when it declares no shape;
    `wanted`: its --input-shape, if given. UsageError when they cannot agree."""
    if wanted is not None:
        if declared is not None and len(declared) != len(wanted):
            raise UsageError(f"--input-shape {name}={shown(wanted)}: the model's input {name!r} has rank "
                             f"{len(declared)} ({shown(declared)})")
        clash = [i for i, (d, w) in enumerate(zip(declared or (), wanted)) if _static(d) and d != w]
        if clash:
            i = clash[0]
            raise UsageError(f"--input-shape {name}={shown(wanted)} contradicts the model, which declares "
                             f"{shown(declared)} (dim {i} is {declared[i]}); only symbolic dims can be set")
        return tuple(wanted)
    if declared is None:
        raise UsageError(f"input {name!r} declares no shape: set it with --input-shape {name}=DxDx...")
    dims = list(declared)
    if dims and not _static(dims[0]):
        dims[0] = batch
    if not all(_static(d) for d in dims):
        example = "x".join(str(d) if _static(d) else "N" for d in dims)
        raise UsageError(f"input {name!r} has symbolic dims besides the batch ({shown(declared)}): set them with "
                         f"--input-shape {name}={example}")
    if dims and dims[0] != batch:
        raise UsageError(f"input {name!r} has a fixed batch of {dims[0]}; re-export with a dynamic batch or use "
                         f"--batch {dims[0]}")
    return tuple(dims)


def check_given(shapes: Shapes | None) -> None:
    """What can be checked before the file is read: distinct names, positive dims."""
    names = [n for n, _ in shapes or ()]
    if len(set(names)) != len(names):
        raise UsageError(f"--input-shape names an input twice: {', '.join(names)}")
    for name, dims in shapes or ():
        if not dims or any(not _static(d) for d in dims):
            raise UsageError(f"--input-shape {name}: dimensions must be positive integers, got {dims!r}")


def timed_batch(batch: int | None, shapes: Shapes | None) -> int:
    """The batch items/s counts per inference: --batch, else the first --input-shape's first dim,
    else 1. --batch and a first --input-shape that disagree are refused (one would be wrong)."""
    first = shapes[0][1][0] if shapes and shapes[0][1] else None
    if batch is not None and first is not None and first != batch:
        name, dims = shapes[0]
        raise UsageError(f"--input-shape {name}={shown(dims)} sets batch {first}, but --batch is {batch}; "
                         "give the same batch to both, or drop --batch")
    return batch or first or 1


def declared_inputs(path: str | Path) -> list[tuple[str, tuple[object, ...] | None]]:
    """(name, dims) of the file's real inputs (initializers listed as inputs are not inputs), read
    without its weights' external data; a dim is an int, a symbolic name, or None."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise InvalidInputError(f"cannot read ONNX model: {exc}", path=path) from exc
    inits = {t.name for t in model.graph.initializer}
    found = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = None
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
        found.append((vi.name, dims))
    return found


def resolve_input_shapes(path: str | Path, batch: int, given: Shapes | None = None) -> Shapes:
    """Every real input's concrete shape (see the module docstring); UsageError naming the input
    and the flag when the given shapes and the file cannot agree."""
    wanted = dict(given or ())
    inputs = declared_inputs(path)
    unknown = sorted(set(wanted) - {n for n, _ in inputs})
    if unknown:
        raise UsageError(f"--input-shape names unknown input(s) {', '.join(unknown)}; the model's inputs are "
                         f"{', '.join(n for n, _ in inputs) or 'none'}", path=path)
    return tuple((name, concrete_shape(name, dims, batch, wanted.get(name))) for name, dims in inputs)
