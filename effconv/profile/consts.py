"""Which tensors are weights: constants, and tensors computed from constants only.

A weight is often not an initializer read directly: old exporters make it at run time with
ConstantOfShape, quantized graphs read it through DequantizeLinear, others through Identity,
Transpose, Reshape or Cast. Such a tensor does not depend on any graph input, so it is a weight, not
an activation. Its parameters are counted once, at the *stored* tensors it is made from (its
leaves): the int8 initializer under a DequantizeLinear (not the scale or zero point), the class token
under an Expand (not the expanded copy), or the whole tensor a generator (ConstantOfShape, a random
op) makes (a parameter where a weight, bias or norm slot reads it: effconv.profile.core). Stored bytes are reported by the leaves' data types: the size an edge engineer ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import onnx
from onnx import TensorProto

FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16})
# Ops that make a tensor from its shape alone: the tensor they make is the stored weight.
GENERATORS = frozenset({"ConstantOfShape", "RandomNormal", "RandomUniform", "RandomNormalLike",
                        "RandomUniformLike", "EyeLike", "Range"})
# Inputs that carry the weight's data (the rest are shapes, scales, zero points, indices).
DATA_SLOTS: Mapping[str, tuple[int, ...]] = {
    op: (0,) for op in ("DequantizeLinear", "QuantizeLinear", "Reshape", "Expand", "Tile", "Slice", "Gather",
                        "Pad", "Squeeze", "Unsqueeze", "Resize", "Upsample", "Split", "Cast", "CastLike",
                        "Transpose", "Flatten", "Identity")
}
SHORT_NAMES = {
    TensorProto.FLOAT: "fp32", TensorProto.FLOAT16: "fp16", TensorProto.BFLOAT16: "bf16",
    TensorProto.DOUBLE: "fp64", TensorProto.INT8: "int8", TensorProto.UINT8: "uint8",
    TensorProto.INT4: "int4", TensorProto.UINT4: "uint4", TensorProto.INT16: "int16",
    TensorProto.UINT16: "uint16", TensorProto.INT32: "int32", TensorProto.UINT32: "uint32",
    TensorProto.INT64: "int64", TensorProto.UINT64: "uint64", TensorProto.BOOL: "bool",
}


def dtype_name(dtype: int) -> str:
    if dtype in SHORT_NAMES:
        return SHORT_NAMES[dtype]
    try:
        return TensorProto.DataType.Name(dtype).lower()
    except ValueError:
        return f"type{dtype}"


def item_bits(dtype: int) -> int:
    if dtype in (TensorProto.INT4, TensorProto.UINT4, getattr(TensorProto, "FLOAT4E2M1", -1)):
        return 4
    try:
        return 8 * onnx.helper.tensor_dtype_to_np_dtype(dtype).itemsize
    except (KeyError, TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Param:
    """A constant tensor (initializer, Constant output or computed from constants): dims and ONNX
    element type, no data."""

    name: str
    dims: tuple[int, ...]
    dtype: int

    @property
    def size(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES

    @property
    def nbytes(self) -> int:
        return (self.size * item_bits(self.dtype) + 7) // 8


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def const_tensors(graph: onnx.GraphProto) -> frozenset[str]:
    """Names of the initializers and of every tensor computed from constants only (no graph input)."""
    consts = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
    for node in graph.node:  # topological order: one pass
        if _has_subgraph(node):  # a body may read outer runtime tensors by name
            continue
        if all(i == "" or i in consts for i in node.input):
            consts.update(o for o in node.output if o)
    return frozenset(consts)


def producers(nodes) -> dict[str, onnx.NodeProto]:
    return {o: n for n in nodes for o in n.output if o}


def leaves(name: str, params: Mapping[str, Param], made_by: Mapping[str, onnx.NodeProto],
           types: Mapping[str, int] | None = None) -> list[str]:
    """The stored tensors (initializers, Constant outputs, generator outputs) a constant is made from.
    `types` (element type by tensor name): an op that makes a float tensor from float and integer
    inputs is walked through its float inputs only; the integers are its controls (CumSum's axis, an
    index, a count), not stored weights (an int8 weight reaches a float one through a data slot:
    DequantizeLinear, Cast)."""
    out, stack, seen = [], [name], set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        node = made_by.get(t)
        if t in params or node is None or node.op_type in GENERATORS:
            out.append(t)
            continue
        slots = DATA_SLOTS.get(node.op_type)
        inputs = [node.input[i] for i in slots if i < len(node.input)] if slots else list(node.input)
        if slots is None and types is not None and _type(t, params, types) in FLOAT_TYPES:
            inputs = [i for i in inputs if _type(i, params, types) in FLOAT_TYPES | {TensorProto.UNDEFINED}]
        stack.extend(i for i in inputs if i)
    return out


def _type(name: str, params: Mapping[str, Param], types: Mapping[str, int]) -> int:
    p = params.get(name)
    return p.dtype if p is not None else types.get(name, TensorProto.UNDEFINED)


# Which inputs of an op are parameters, and which kind. Any other float constant input is `other`.
PARAM_ROLES: dict[str, dict[int, str]] = {
    "Conv": {1: "weights", 2: "biases"},
    "ConvTranspose": {1: "weights", 2: "biases"},
    "Gemm": {0: "weights", 1: "weights", 2: "biases"},
    "MatMul": {0: "weights", 1: "weights"},
    "Einsum": {0: "weights", 1: "weights"},
    "PRelu": {1: "weights"},
    **dict.fromkeys(("RNN", "GRU", "LSTM"), {1: "weights", 2: "weights", 3: "biases", 7: "weights"}),
    "Add": {0: "biases", 1: "biases"},
    "Sub": {0: "biases", 1: "biases"},
    "BatchNormalization": {1: "norm_params", 2: "norm_params", 3: "norm_params", 4: "norm_params"},
    "InstanceNormalization": {1: "norm_params", 2: "norm_params"},
    "LayerNormalization": {1: "norm_params", 2: "norm_params"},
    "GroupNormalization": {1: "norm_params", 2: "norm_params"},
}
