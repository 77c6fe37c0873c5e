"""Output shapes of the com.microsoft ops that ONNX shape inference does not know.

ONNX Runtime's QOperator quantizer and its saved optimized graphs write com.microsoft ops
(QLinearAdd, QLinearGlobalAveragePool, QGemm, FusedConv ...). ONNX's shape inference has no schema
for them, so every tensor below one would be "shape unknown". Their shapes follow from their float
counterparts' rules; effconv.profile.propagate applies them node by node, and inference of the
nodes below carries on from there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto

from effconv.profile.handlers import (_attrs, conv_output_shape, conv_transpose_output_shape, gemm_cost,
                                     matmul_output_shape)

MS = "com.microsoft"
SAME_AS_FIRST = frozenset(("QLinearSigmoid QLinearLeakyRelu QLinearSoftmax Gelu FastGelu BiasGelu QuickGelu "
                           "BiasAdd SkipLayerNormalization SkipSimplifiedLayerNormalization "
                           "SimplifiedLayerNormalization QuantizeLinear DequantizeLinear QLinearReduceMean").split())


def _static(s) -> bool:
    return s is not None and all(isinstance(d, int) and d > 0 for d in s)


def _pool(x, a: dict) -> tuple[int, ...]:
    """[N, C, *spatial] of a pooling node. With ceil_mode, a window that would start in the end
    padding is dropped: ONNX Runtime's rule (and PyTorch's, and ONNX shape inference's from opset
    22; before 22 ONNX inference keeps that window, one more row or column than any runtime makes)."""
    kernel = a.get("kernel_shape") or [1] * (len(x) - 2)
    r = len(kernel)
    strides = a.get("strides") or [1] * r
    pads = a.get("pads") or [0] * 2 * r
    dil = a.get("dilations") or [1] * r
    out = []
    for i, k in enumerate(kernel):
        span = x[2 + i] + pads[i] + pads[i + r] - (k - 1) * dil[i] - 1
        n = (-(-span // strides[i]) if a.get("ceil_mode", 0) else span // strides[i]) + 1
        if a.get("ceil_mode", 0) and (n - 1) * strides[i] >= x[2 + i] + pads[i]:
            n -= 1
        out.append(n)
    return (x[0], x[1], *out)


CEIL_POOLS = frozenset({"MaxPool", "AveragePool", "LpPool"})


def ceil_pool_output(node: onnx.NodeProto, shapes: Mapping[str, tuple]) -> tuple[int, ...] | None:
    """The output shape of a standard pool with ceil_mode=1 (explicit pads) by the rule above;
    None for any other node or an input shape that is not static."""
    if node.op_type not in CEIL_POOLS or node.domain not in ("", "ai.onnx") or not node.input:
        return None
    a = _attrs(node)
    x = shapes.get(node.input[0])
    auto = a.get("auto_pad", "NOTSET")
    if not a.get("ceil_mode", 0) or auto not in ("NOTSET", b"NOTSET", "") or not _static(x) or len(x) < 3:
        return None
    try:
        dims = _pool(x, a)
    except (TypeError, IndexError, ZeroDivisionError):
        return None
    return dims if _static(dims) else None


def conv_transpose_same_output(node: onnx.NodeProto, shapes: Mapping[str, tuple]) -> tuple[int, ...] | None:
    """ConvTranspose with auto_pad SAME_UPPER/SAME_LOWER: input x stride per spatial dim, or the
    unpadded output when that is smaller (pads are never negative): ONNX Runtime's rule. ONNX
    inference adds output_padding to input x stride instead."""
    if node.op_type != "ConvTranspose" or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
        return None
    a = _attrs(node)
    if a.get("auto_pad") not in ("SAME_UPPER", "SAME_LOWER") or a.get("output_shape"):
        return None
    x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
    if not (_static(x) and _static(w)) or len(x) < 3 or len(w) != len(x):
        return None
    dims = conv_transpose_output_shape(x, w, a)
    return dims if _static(dims) else None


def runtime_output(node: onnx.NodeProto, shapes: Mapping[str, tuple]) -> tuple[int, ...] | None:
    """The first output's shape where ONNX inference is known to differ from the spec and ONNX
    Runtime (pools with ceil_mode before opset 22, ConvTranspose SAME with output_padding, an Einsum
    whose index is 1 in one operand and n in another: ONNX keeps a size it met, the runtime broadcasts
    to n); None for every other node."""
    if node.op_type in CEIL_POOLS:
        return ceil_pool_output(node, shapes)
    if node.op_type == "ConvTranspose":
        return conv_transpose_same_output(node, shapes)
    if node.op_type == "Einsum":
        return einsum_output(node, shapes)
    return None


def einsum_output(node: onnx.NodeProto, shapes: Mapping[str, tuple]) -> tuple[int, ...] | None:
    from effconv.profile.einsum import EinsumError, parse_einsum

    ins = [shapes.get(name) for name in node.input]
    if not all(s is not None and _static(s) for s in ins):
        return None
    try:
        return tuple(parse_einsum(_attrs(node).get("equation", ""), list(ins)).output_shape)
    except EinsumError:
        return None


def _shape_of(node: onnx.NodeProto, shape, graph_shapes) -> tuple[int, ...] | None:
    op, a = node.op_type, _attrs(node)
    x = shape(0)
    if op in SAME_AS_FIRST:
        return x
    if op in ("QLinearAdd", "QLinearMul"):
        b = shape(3)
        return tuple(np.broadcast_shapes(x, b)) if _static(x) and _static(b) else None
    if op == "QLinearGlobalAveragePool":
        return None if not _static(x) else ((x[0], *[1] * (len(x) - 2), x[-1]) if a.get("channels_last", 0)
                                            else (x[0], x[1], *[1] * (len(x) - 2)))
    if op == "QLinearAveragePool":
        return _pool(x, a) if _static(x) and not a.get("channels_last", 0) else None
    if op == "QLinearConcat":
        parts = [shape(i) for i in range(2, len(node.input), 3)]
        if not all(_static(p) for p in parts):
            return None
        axis = a.get("axis", 0) % len(parts[0])
        return (*parts[0][:axis], sum(p[axis] for p in parts), *parts[0][axis + 1:])
    if op in ("QLinearConv", "FusedConv"):
        w = shape(3 if op == "QLinearConv" else 1)
        return conv_output_shape(x, w, a) if _static(x) and _static(w) else None
    if op == "QGemm":
        return gemm_cost(node, _Shapes(graph_shapes), 0, 3, None).output_shape if _static(x) else None
    if op == "FusedGemm":
        return gemm_cost(node, _Shapes(graph_shapes), 0, 1, None).output_shape if _static(x) else None
    if op in ("FusedMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat") and not any(
            a.get(k, 0) for k in ("transBatchA", "transBatchB")):
        b = shape(1)
        if not (_static(x) and _static(b)):
            return None
        x = (*x[:-2], x[-1], x[-2]) if a.get("transA", 0) and len(x) > 1 else x  # FusedMatMul's transposes
        b = (*b[:-2], b[-1], b[-2]) if a.get("transB", 0) and len(b) > 1 else b
        return matmul_output_shape(x, b)
    if op == "DynamicQuantizeLSTM":  # Y [seq, dirs, batch, hidden]; W [dirs, I, 4H], R [dirs, H, 4H]
        w, r = shape(1), shape(2)
        return (x[0], w[0], x[1], r[1]) if _static(x) and _static(w) and _static(r) else None
    return None


class _Shapes:
    """The piece of effconv.profile.graph.Graph that gemm_cost reads."""

    def __init__(self, shapes: Mapping[str, tuple]):
        self._s = shapes

    def shape(self, name: str):
        return self._s.get(name)


def _elem_type(node: onnx.NodeProto, types: Mapping[str, int]) -> int:
    if node.op_type in ("DequantizeLinear", "FusedConv", "FusedGemm", "FusedMatMul", "DynamicQuantizeMatMul",
                        "DynamicQuantizeLSTM", "MatMulIntegerToFloat", "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd") \
            or "LayerNormalization" in node.op_type:
        return types.get(node.input[0], TensorProto.FLOAT) if node.op_type != "DequantizeLinear" else TensorProto.FLOAT
    if node.op_type == "QLinearConcat":
        return types.get(node.input[2], TensorProto.UINT8) if len(node.input) > 2 else TensorProto.UINT8
    if node.op_type == "QGemm" and len(node.input) < 8:  # no y_scale: a float output
        return TensorProto.FLOAT
    return types.get(node.input[0], TensorProto.UINT8)


def ms_output(node: onnx.NodeProto, shapes: Mapping[str, tuple], types: Mapping[str, int]) -> tuple | None:
    """(dims, ONNX element type) of the node's first output, or None when its rule cannot tell."""
    def shape(i):
        return shapes.get(node.input[i]) if i < len(node.input) and node.input[i] else None

    try:
        dims = _shape_of(node, shape, shapes)
    except Exception:  # noqa: BLE001 (a malformed node: its shape stays unknown, the profile says so)
        return None
    return (tuple(dims), _elem_type(node, types)) if _static(dims) else None
