"""What a TensorRT build is given, decided before TensorRT is imported (plain Python, tested
everywhere): the optimization profile of a dynamic input, and how an ONNX file is quantized.

Optimization profile (`profile_shapes`): TensorRT needs min / opt / max shapes for every input
with a dynamic dimension (-1 in its network, a symbol or nothing in the ONNX file).
- The batch dimension (the first) stays a range: min 1, max max(MAX_BATCH, opt), so the engine
  serves the batches the file allows; opt is --input-shape's N, else --batch (1 by default:
  latency at batch 1 is what effconv measures). This is the profile effconv always gave a
  dynamic-batch export.
- Every other dynamic dimension (a symbolic height or width) is fixed at --input-shape's value
  (min = opt = max): TensorRT picks its kernels for one image size, and the caller named it.
  Without --input-shape such a file is a usage error that says what to pass.
- A fixed dimension must equal --input-shape's (a mismatch is a usage error), and a file with no
  dynamic dimension needs no profile (TensorRT makes the default one).

Quantization (`quantization_mode`): a file with QuantizeLinear/DequantizeLinear nodes is
explicitly quantized, and TensorRT builds it with the file's scales (no calibrator) when every
quantized tensor is int8 with zero point 0, the only integer Q/DQ form TensorRT runs. effconv's
own int8 ONNX (effconv.export.int8) quantizes activations to uint8 with a zero point, the form
ONNX Runtime and OpenVINO run on x86: TensorRT refuses it, so it is refused here with what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from effconv.errors import InvalidInputError, UsageError

MAX_BATCH = 256  # the largest batch a dynamic-batch engine accepts (unless --input-shape asks more)
INT8, UINT8 = 3, 2  # onnx.TensorProto.INT8 / UINT8, spelled here to keep this module onnx-free


@dataclass(frozen=True)
class ProfileShapes:
    """One optimization profile entry: IOptimizationProfile.set_shape(input, min, opt, max)."""

    input: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


def _text(dims: Sequence) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def dynamic(d) -> bool:
    """A dimension TensorRT must be told: None (a symbol, or nothing) or TensorRT's -1."""
    return d is None or d < 0


def profile_shapes(name: str, dims: Sequence[int | None], requested: Sequence[int] | None = None, *,
                   batch: int = 1, max_batch: int = MAX_BATCH) -> ProfileShapes | None:
    """The profile for input `name` of shape `dims` (None or -1: dynamic), given --input-shape
    `requested` and --batch `batch`; None when every dimension is fixed (see the module doc)."""
    dims = tuple(None if dynamic(d) else int(d) for d in dims)
    if requested is not None:
        requested = tuple(int(d) for d in requested)
        if len(requested) != len(dims):
            raise UsageError(f"--input-shape {_text(requested)} has {len(requested)} dimensions; input "
                             f"{name!r} has {len(dims)} ({_text(dims)})")
        fixed = [i for i, d in enumerate(dims) if d is not None and d != requested[i]]
        if fixed:
            raise UsageError(f"--input-shape {_text(requested)} does not match the fixed shape {_text(dims)} "
                             f"of input {name!r} (dimension {fixed[0]})")
    if all(d is not None for d in dims):
        return None
    symbolic = [i for i, d in enumerate(dims) if d is None and i > 0]
    if symbolic and requested is None:
        raise UsageError(f"input {name!r} has shape {_text(dims)}: give --input-shape "
                         f"{name}={_text(['N' if i == 0 else (d or 'D') for i, d in enumerate(dims)])} "
                         "with every ? filled in")
    opt = requested if requested is not None else (batch, *dims[1:])
    low, high = list(opt), list(opt)
    if dims[0] is None:
        low[0], high[0] = 1, max(max_batch, opt[0])
    return ProfileShapes(name, tuple(low), tuple(opt), tuple(high))


def graph_input(model, path: Path) -> tuple[str, tuple[int | None, ...]]:
    """The one float32 input of an ONNX model (initializers are not inputs): its name and shape,
    None for a dynamic dimension."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != 1:  # 1: onnx.TensorProto.FLOAT
        raise InvalidInputError("a TensorRT engine is built here from a model with one float32 input", path=path)
    tensor = inputs[0].type.tensor_type
    if not tensor.HasField("shape"):
        raise InvalidInputError(f"input {inputs[0].name!r} has no shape (not even its rank)", path=path)
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return inputs[0].name, dims


def check_input_name(given: str | None, actual: str, path: Path) -> None:
    """--input-shape NAME=... must name the model's input (a typo would otherwise go unnoticed)."""
    if given is not None and given != actual:
        raise UsageError(f"--input-shape names {given!r}; the model's input is {actual!r}", path=path)


def quantization_mode(model, path: Path) -> str | None:
    """None for a float model; "qdq-int8" for Q/DQ that TensorRT runs as it stands (int8, zero
    point 0); InvalidInputError naming the first node it would refuse otherwise."""
    nodes = [n for n in _all_nodes(model.graph) if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not nodes:
        return None
    tensors = {t.name: t for t in model.graph.initializer}
    tensors.update({n.output[0]: a.t for n in _all_nodes(model.graph) if n.op_type == "Constant"
                    for a in n.attribute if a.name == "value"})
    for node in nodes:
        kind, values = _zero_point(node, tensors)
        if kind is None or (kind == INT8 and not any(values)):
            continue
        what = {UINT8: "uint8"}.get(kind, f"ONNX type {kind}") if kind != INT8 else "int8 with a nonzero zero point"
        raise InvalidInputError(
            f"{node.op_type} {node.name or node.output[0]!r} quantizes as {what}; TensorRT runs int8 Q/DQ with zero "
            "point 0 only (effconv's int8 ONNX is uint8, for ONNX Runtime and OpenVINO): build the engine from "
            "the float file with --precision int8", path=path)
    return "qdq-int8"


def _zero_point(node, tensors) -> tuple[int | None, list[int]]:
    """(the integer type, the zero-point values) a Q/DQ node works in; (None, []) when that
    follows from another node (a DequantizeLinear of a QuantizeLinear's output, checked there)."""
    if len(node.input) > 2 and node.input[2]:
        point = tensors.get(node.input[2])
        return (point.data_type, _values(point)) if point is not None else (None, [])
    if node.op_type == "QuantizeLinear":  # no zero point: output_dtype (opset 21), else uint8
        dtype = next((a.i for a in node.attribute if a.name == "output_dtype" and a.i), UINT8)
        return dtype, [0]
    source = tensors.get(node.input[0])
    return (source.data_type, [0]) if source is not None else (None, [])


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:  # If/Loop/Scan bodies
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _all_nodes(sub)


def _values(tensor) -> list[int]:
    """A zero-point tensor's values (int8/uint8: raw bytes or int32_data)."""
    if tensor.raw_data:
        return [b if tensor.data_type == UINT8 or b < 128 else b - 256 for b in tensor.raw_data]
    return list(tensor.int32_data)
