"""Mult-Adds per ONNX op type: `HANDLERS[op_type](node, graph) -> OpCost`.

Convention: one fused multiply-add counts 1. `OpCost.mult_adds` is what the `paper` convention
counts (non-zero only for Conv, ConvTranspose, Gemm and MatMul); `OpCost.extra` is what the `all`
convention adds on top (bias adds, normalization, pooling, activations, element-wise ops, Resize,
Softmax). Every formula is in docs/profile-json-schema.md ("Counting conventions"). An op type
missing from HANDLERS is *unsupported*: the profile lists it with its count, never counts it as 0.
"""

# size: the table and the formulas it names read best as one file, a screen per op family; the
# quantized ops (quantized.py), Einsum parsing (einsum.py) and ONNX Runtime's shapes already live apart.

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

if TYPE_CHECKING:
    from effconv.profile.graph import Graph

from effconv.profile.einsum import parse_einsum


@dataclass(frozen=True)
class OpCost:
    mult_adds: int  # paper convention: fused multiply-adds of Conv/ConvTranspose/Gemm/MatMul
    extra: int = 0  # added by the `all` convention (1 per elementary op, see module docstring)
    output_shape: tuple[int, ...] | None = None  # computed by the handler from attributes, if it does


class ShapeUnknown(Exception):
    """A tensor the handler needs has no static shape; the node is reported, not counted."""


class ShapeMismatch(Exception):
    """The node's input shapes contradict each other (e.g. --input-shape with the wrong channels)."""


Handler = Callable[[onnx.NodeProto, "Graph"], OpCost]


def numel(shape) -> int:
    return math.prod(shape)


def _shape(g: Graph, name: str) -> tuple[int, ...]:
    s = g.shape(name) if name else None
    if s is None or not all(isinstance(d, int) for d in s):
        raise ShapeUnknown(name)
    return s  # type: ignore[return-value]


_FAST_ATTRS = {
    onnx.AttributeProto.INT: lambda a: a.i,
    onnx.AttributeProto.INTS: lambda a: list(a.ints),
    onnx.AttributeProto.FLOAT: lambda a: a.f,
    onnx.AttributeProto.STRING: lambda a: a.s.decode(),
}


def _attrs(node: onnx.NodeProto) -> dict:
    """Attribute values; the common scalar/list kinds without onnx.helper's generic path (speed)."""
    out = {}
    for a in node.attribute:
        fast = _FAST_ATTRS.get(a.type)
        out[a.name] = fast(a) if fast else onnx.helper.get_attribute_value(a)
    return out


def _has(node: onnx.NodeProto, i: int) -> bool:
    return len(node.input) > i and node.input[i] != ""


# Convolutions -----------------------------------------------------------------------------------
def _spatial_attrs(a: dict, kernel: tuple[int, ...]) -> tuple[list[int], list[int], list[int], str]:
    r = len(kernel)
    strides = list(a.get("strides") or [1] * r)
    dil = list(a.get("dilations") or [1] * r)
    pads = list(a.get("pads") or [0] * 2 * r)
    auto = a.get("auto_pad", b"NOTSET")
    return strides, dil, pads, auto.decode() if isinstance(auto, bytes) else auto


def conv_output_shape(x: tuple[int, ...], w: tuple[int, ...], attrs: dict) -> tuple[int, ...]:
    """Conv output [N, C_out, *spatial] from input and weight shapes and the node's attributes."""
    kernel = tuple(attrs.get("kernel_shape") or w[2:])
    strides, dil, pads, auto = _spatial_attrs(attrs, kernel)
    out = []
    for i, (size, k) in enumerate(zip(x[2:], kernel)):
        k_eff = (k - 1) * dil[i] + 1  # dilated kernel extent, pixels
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))  # ceil(size / stride)
        elif auto == "VALID":
            out.append((size - k_eff) // strides[i] + 1)
        else:
            out.append((size + pads[i] + pads[i + len(kernel)] - k_eff) // strides[i] + 1)
    return (x[0], w[0], *out)


def conv_transpose_output_shape(x: tuple[int, ...], w: tuple[int, ...], attrs: dict) -> tuple[int, ...]:
    """ConvTranspose output [N, C_out, *spatial]; C_out = W[1] * groups."""
    kernel = tuple(attrs.get("kernel_shape") or w[2:])
    strides, dil, pads, auto = _spatial_attrs(attrs, kernel)
    c_out = w[1] * attrs.get("group", 1)
    if attrs.get("output_shape"):
        return (x[0], c_out, *attrs["output_shape"][-len(kernel):])
    opad = list(attrs.get("output_padding") or [0] * len(kernel))
    out = []
    for i, (size, k) in enumerate(zip(x[2:], kernel)):
        full = strides[i] * (size - 1) + opad[i] + (k - 1) * dil[i] + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):  # pads make it input x stride, but never negative
            out.append(min(size * strides[i], full))  # (ONNX Runtime's rule, checked by the fuzzer)
        else:
            out.append(full - (0 if auto == "VALID" else pads[i] + pads[i + len(kernel)]))
    return (x[0], c_out, *out)


def conv_cost(node: onnx.NodeProto, g: Graph, xi: int = 0, wi: int = 1, bi: int | None = 2) -> OpCost:
    """Conv with its input, weight and bias at inputs `xi`, `wi`, `bi` (QLinearConv: 0, 3, 8)."""
    x, w = _shape(g, node.input[xi]), _shape(g, node.input[wi])
    attrs = _attrs(node)
    if len(x) > 1 and len(w) > 1 and x[1] != w[1] * attrs.get("group", 1):
        raise ShapeMismatch(f"{node.op_type} {node.name!r} reads {x[1]} channels where its weight "
                            f"{list(w)} (group {attrs.get('group', 1)}) expects {w[1] * attrs.get('group', 1)}")
    out = conv_output_shape(x, w, attrs)
    per_output = numel(w[1:])  # (C_in / groups) * kh * kw multiply-adds per output element
    return OpCost(numel(out) * per_output, numel(out) if bi is not None and _has(node, bi) else 0, out)


def conv(node: onnx.NodeProto, g: Graph) -> OpCost:
    """out_elements * (C_in / groups) * prod(kernel); bias: +1 per output element (all)."""
    return conv_cost(node, g)


def conv_transpose(node: onnx.NodeProto, g: Graph) -> OpCost:
    """in_elements * (C_out / groups) * prod(kernel): every input pixel scatters one kernel."""
    x, w = _shape(g, node.input[0]), _shape(g, node.input[1])
    out = conv_transpose_output_shape(x, w, _attrs(node))
    return OpCost(numel(x) * numel(w[1:]), numel(out) if _has(node, 2) else 0, out)


# Matrix products --------------------------------------------------------------------------------
def gemm_cost(node: onnx.NodeProto, g: Graph, ai: int = 0, bi: int = 1, ci: int | None = 2) -> OpCost:
    """Y = A' B' (+ C): M*N*K; the C add is +M*N (all). alpha/beta scalings are not counted."""
    a, b = _shape(g, node.input[ai]), _shape(g, node.input[bi])
    at = _attrs(node)
    m, k = (a[1], a[0]) if at.get("transA", 0) else (a[0], a[1])
    n = b[0] if at.get("transB", 0) else b[1]
    return OpCost(m * n * k, m * n if ci is not None and _has(node, ci) else 0, (m, n))


def gemm(node: onnx.NodeProto, g: Graph) -> OpCost:
    return gemm_cost(node, g)


def matmul_output_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy.matmul semantics: 1-D operands are promoted then squeezed; batch dims broadcast."""
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch_a, batch_b = a2[:-2], b2[:-2]
    r = max(len(batch_a), len(batch_b))
    batch_a, batch_b = (1,) * (r - len(batch_a)) + batch_a, (1,) * (r - len(batch_b)) + batch_b
    batch = tuple(max(p, q) for p, q in zip(batch_a, batch_b))
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def matmul_cost(node: onnx.NodeProto, g: Graph, ai: int = 0, bi: int = 1, trans: bool = False) -> OpCost:
    """output_elements * K, K = last dim of A (broadcast batch dims included). `trans`: the node's
    transA/transB attributes swap the last two dims (com.microsoft FusedMatMul)."""
    a, b = _shape(g, node.input[ai]), _shape(g, node.input[bi])
    if trans:
        at = _attrs(node)
        if at.get("transBatchA", 0) or at.get("transBatchB", 0):
            raise ShapeUnknown(node.input[ai])
        a = (*a[:-2], a[-1], a[-2]) if at.get("transA", 0) and len(a) > 1 else a
        b = (*b[:-2], b[-1], b[-2]) if at.get("transB", 0) and len(b) > 1 else b
    out = matmul_output_shape(a, b)
    return OpCost(numel(out) * a[-1], 0, out)


def matmul(node: onnx.NodeProto, g: Graph) -> OpCost:
    return matmul_cost(node, g)


def attention(node: onnx.NodeProto, g: Graph) -> OpCost:
    """ONNX Attention (opset 23): Q K^T and the weights times V, B*Hq*Sq*Skv*(D + Dv); K and V heads
    broadcast to Q's (grouped-query). 3-D inputs [B, S, H*D] name their heads in q_num_heads /
    kv_num_heads; past keys and values (inputs 4, 5) lengthen Skv."""
    q, k, v = (_shape(g, node.input[i]) for i in range(3))
    at = _attrs(node)
    if len(q) == 3:
        hq, hkv = at.get("q_num_heads", 0), at.get("kv_num_heads", 0)
        if not hq or not hkv:
            raise ShapeUnknown(node.input[0])
        b, sq, d = q[0], q[1], q[2] // hq
        skv, dv = k[1], v[2] // hkv
    else:
        b, hq, sq, d = q
        skv, dv = k[2], v[3]
    if _has(node, 4):
        skv += _shape(g, node.input[4])[-2]
    out = (b, sq, hq * dv) if len(q) == 3 else (b, hq, sq, dv)
    return OpCost(b * hq * sq * skv * (d + dv), 3 * b * hq * sq * skv, out)


RNN_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def recurrent(node: onnx.NodeProto, g: Graph) -> OpCost:
    """RNN / GRU / LSTM: each step multiplies the input by W [dirs, gates*H, I] and the hidden state
    by R [dirs, gates*H, H]: seq * batch * dirs * gates*H * (I + H). Biases, activations and the
    gate arithmetic are element-wise (`all`: 1 per gate element and step)."""
    x, w, r = (_shape(g, node.input[i]) for i in range(3))
    seq, batch = (x[1], x[0]) if _attrs(node).get("layout", 0) else (x[0], x[1])
    dirs, gates_h, inp = w
    hidden = r[2]
    steps = seq * batch * dirs
    return OpCost(steps * gates_h * (inp + hidden), steps * gates_h * 2, (seq, dirs, batch, hidden))


def einsum(node: onnx.NodeProto, g: Graph) -> OpCost:
    """The matrix product it is: each pairwise contraction (left to right) costs the product of the
    sizes of every index it touches; a one-operand Einsum (sum, transpose) is 0 (`all`: 1 per input)."""
    shapes = [_shape(g, name) for name in node.input]
    spec = parse_einsum(_attrs(node).get("equation", ""), shapes)
    if len(shapes) == 1:
        return OpCost(0, numel(shapes[0]), spec.output_shape)
    return OpCost(spec.pairwise_mult_adds(), 0, spec.output_shape)


# Everything the `all` convention adds ---------------------------------------------------------------
def _out(node: onnx.NodeProto, g: Graph) -> int:
    return numel(_shape(g, node.output[0]))


def per_output(ops: int, variadic: bool = False) -> Handler:
    """`ops` elementary operations per output element (x (inputs - 1) for variadic Sum/Max/...)."""

    def handler(node: onnx.NodeProto, g: Graph) -> OpCost:
        k = max(1, sum(1 for i in node.input if i) - 1) if variadic else 1
        return OpCost(0, ops * k * _out(node, g))

    return handler


def per_input(ops: int) -> Handler:
    """`ops` per input element: reductions, global pooling, softmax, normalization statistics."""

    def handler(node: onnx.NodeProto, g: Graph) -> OpCost:
        return OpCost(0, ops * numel(_shape(g, node.input[0])))

    return handler


def pool(node: onnx.NodeProto, g: Graph) -> OpCost:
    """MaxPool/AveragePool/LpPool: one op per window element per output element."""
    return OpCost(0, _out(node, g) * numel(_attrs(node).get("kernel_shape", [1])))


def lrn(node: onnx.NodeProto, g: Graph) -> OpCost:
    """LRN: `size` squares accumulated plus one scaling per element."""
    return OpCost(0, _out(node, g) * (_attrs(node).get("size", 1) + 1))


def resize(node: onnx.NodeProto, g: Graph) -> OpCost:
    """Resize/Upsample: nearest 0; linear 2**r, cubic 4**r multiply-adds per output (r resized dims)."""
    mode = _attrs(node).get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    x, y = _shape(g, node.input[0]), _shape(g, node.output[0])
    r = sum(1 for p, q in zip(x, y) if p != q)
    taps = {"nearest": 0, "linear": 2**r, "bilinear": 2**r, "cubic": 4**r}.get(mode, 2**r)
    return OpCost(0, taps * numel(y))


def zero(node: onnx.NodeProto, g: Graph) -> OpCost:
    """Data movement, shape arithmetic and constants: no arithmetic, by convention."""
    return OpCost(0, 0)


ACTIVATIONS = (
    "Relu LeakyRelu PRelu Sigmoid HardSigmoid HardSwish Tanh Elu Selu Celu Softplus Softsign Clip "
    "Gelu Mish Erf Exp Log Sqrt Reciprocal Neg Abs ThresholdedRelu Sin Cos Floor Ceil Round Sign Not "
    "IsNaN IsInf BitwiseNot Swish"
)
BINARY = "Add Sub Mul Div Pow Mod Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor Where"
VARIADIC = "Sum Mean Max Min"
REDUCTIONS = (
    "GlobalAveragePool GlobalMaxPool GlobalLpPool ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd "
    "ReduceL1 ReduceL2 ReduceLogSumExp ReduceSumSquare ArgMax ArgMin Hardmax"
)
ZERO_COST = (
    "Reshape Flatten Transpose Squeeze Unsqueeze Concat Split Slice Gather GatherElements GatherND "
    "Shape Size Constant ConstantOfShape Identity Cast CastLike Dropout Pad Expand Tile Range "
    "DepthToSpace SpaceToDepth NonZero ScatterND ScatterElements Trilu EyeLike TopK "
    "RandomNormal RandomUniform RandomNormalLike RandomUniformLike Bernoulli Multinomial "
    "CenterCropPad ReverseSequence Compress OneHot Unique"
)

HANDLERS: dict[str, Handler] = {
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "Gemm": gemm,
    "MatMul": matmul,
    "Einsum": einsum,
    "Attention": attention,
    **dict.fromkeys(RNN_GATES, recurrent),
    "BatchNormalization": per_output(1),  # inference: one fused scale-and-shift per element
    "InstanceNormalization": per_input(3),  # mean, variance, fused normalize-affine per element
    "LayerNormalization": per_input(3),
    "GroupNormalization": per_input(3),
    "LpNormalization": per_input(2),  # norm accumulation and one scaling per element
    "LRN": lrn,
    "MaxPool": pool,
    "AveragePool": pool,
    "LpPool": pool,
    "Softmax": per_input(3),  # exp, sum, divide per element
    "LogSoftmax": per_input(3),
    "Resize": resize,
    "Upsample": resize,
    "Col2Im": per_input(1),  # the inverse of unfold: each column element added into its pixel
    "CumSum": per_input(1),
    "GridSample": per_output(4),  # bilinear: four taps per output element
    **{op: per_output(1) for op in ACTIVATIONS.split()},
    **{op: per_output(1) for op in BINARY.split()},
    **{op: per_output(1, variadic=True) for op in VARIADIC.split()},
    **{op: per_input(1) for op in REDUCTIONS.split()},
    **{op: zero for op in ZERO_COST.split()},
}
