"""Layer types in the MobileNet paper's vocabulary (ASCII): `Conv 1x1`, `Conv DW 3x3`, `Conv 3x3`,
`Conv 5x5`, `Conv 11x11`, `Conv 3x3 grouped`, `Fully Connected`; every other node is its op_type.

A convolution is depthwise when groups == input channels (> 1), whatever its channel multiplier.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from effconv.profile.graph import Graph

FULLY_CONNECTED = "Fully Connected"


def _group(node: onnx.NodeProto) -> int:
    for a in node.attribute:
        if a.name == "group":
            return a.i
    return 1


def conv_type(node: onnx.NodeProto, g: Graph) -> str:
    """`Conv KxK`, `Conv DW KxK` or `Conv KxK grouped` from the weight's dims and `group`."""
    w = g.shape(node.input[1]) if len(node.input) > 1 else None
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


def fc_type(node: onnx.NodeProto, g: Graph) -> str:
    """Gemm/MatMul with a constant (weight) operand is a fully connected layer."""
    p0, p1 = (g.param(node.input[i]) if len(node.input) > i else None for i in (0, 1))
    if any(p is not None and p.is_float for p in (p0, p1)):
        return FULLY_CONNECTED
    return node.op_type


TYPE_RULES: dict[str, Callable[[onnx.NodeProto, Graph], str]] = {
    "Conv": conv_type,
    "Gemm": fc_type,
    "MatMul": fc_type,
}


def layer_type(node: onnx.NodeProto, g: Graph) -> str:
    rule = TYPE_RULES.get(node.op_type)
    return rule(node, g) if rule else node.op_type
