"""Layer types in the MobileNet paper's vocabulary (ASCII): `Conv 1x1`, `Conv DW 3x3`, `Conv 3x3`,
`Conv 5x5`, `Conv 11x11`, `Conv 3x3 grouped`, `Fully Connected`; every other node is its op_type.

A convolution is depthwise when groups == input channels (> 1), whatever its channel multiplier.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from effconv.profile.graph import Graph
from effconv.profile.quantized import FLOAT_OP, QUANT_ROLES, WEIGHT_INPUT

FULLY_CONNECTED = "Fully Connected"


def _group(node: onnx.NodeProto) -> int:
    for a in node.attribute:
        if a.name == "group":
            return a.i
    return 1


def conv_type(node: onnx.NodeProto, g: Graph, wi: int = 1) -> str:
    """`Conv KxK`, `Conv DW KxK` or `Conv KxK grouped` from the weight's dims and `group`."""
    w = g.shape(node.input[wi]) if len(node.input) > wi else None
    if w is None or len(w) < 3 or not all(isinstance(d, int) for d in w):
        return "Conv"
    kernel = "x".join(str(k) for k in w[2:])
    groups = _group(node)
    c_in = w[1] * groups  # W is [C_out, C_in / groups, k...]
    if groups == 1:
        return f"Conv {kernel}"
    if groups == c_in:
        return f"Conv DW {kernel}"
    return f"Conv {kernel} grouped"


def fc_type(node: onnx.NodeProto, g: Graph, slots: tuple[int, ...] = (0, 1), name: str | None = None) -> str:
    """Gemm/MatMul (or a quantized form) with a constant operand (a weight) is a fully connected
    layer; without one it keeps the float op's name (attention's MatMul)."""
    for i in slots:
        if len(node.input) > i and node.input[i] and g.root(node.input[i]) in g.consts:
            return FULLY_CONNECTED
    return name or node.op_type


def _op_key(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


TYPE_RULES: dict[str, Callable[[onnx.NodeProto, Graph], str]] = {
    "Conv": conv_type,
    "Gemm": fc_type,
    "MatMul": fc_type,
    "Einsum": fc_type,
    **{op: (lambda n, g, wi=wi: conv_type(n, g, wi)) for op, wi in WEIGHT_INPUT.items()},
    **{op: (lambda n, g, op=op: fc_type(n, g, _slots(op), FLOAT_OP[op]))
       for op, f in FLOAT_OP.items() if f in ("Gemm", "MatMul")},
}


def _slots(op: str) -> tuple[int, ...]:
    return tuple(i for i, role in QUANT_ROLES.get(op, {}).items() if role == "weights")


def layer_type(node: onnx.NodeProto, g: Graph) -> str:
    key = _op_key(node)
    rule = TYPE_RULES.get(key)
    return rule(node, g) if rule else node.op_type
