"""Quantized and runtime-fused ops, counted as their float counterparts.

ONNX Runtime's quantizer writes two forms. QDQ graphs keep float Conv/Gemm/MatMul and put
QuantizeLinear/DequantizeLinear pairs around them (the weight arrives through a DequantizeLinear:
effconv.profile.consts counts its int8 initializer). QOperator graphs use integer ops whose weight
sits at another input: QLinearConv (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B),
QLinearMatMul (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp), ConvInteger / MatMulInteger
(x, w, x_zp, w_zp), and com.microsoft's QGemm (A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp)
and QLinear* element-wise ops. Files saved after ONNX Runtime's graph optimizations hold
com.microsoft FusedConv, FusedGemm and FusedMatMul. A Mult-Add is a Mult-Add whatever the data
type: each is counted exactly as the float op it stands for; scales and zero points are not
parameters (they are listed as "skip" roles).
"""

from __future__ import annotations

from collections.abc import Callable

from effconv.profile import handlers as h

MS = "com.microsoft"
SKIP = "skip"  # a scale or zero point: neither a parameter nor an activation of interest


def _q(fn: Callable, **idx) -> h.Handler:
    def handler(node, g):
        return fn(node, g, **idx)

    handler.__doc__ = f"{fn.__name__} with inputs {idx}"
    return handler


def _fused_matmul(node, g):
    return h.matmul_cost(node, g, trans=True)


def dynamic_quantize_lstm(node, g):
    """com.microsoft DynamicQuantizeLSTM: an LSTM whose int8 weights are stored transposed,
    W [dirs, I, 4H] and R [dirs, H, 4H] (ONNX LSTM: [dirs, 4H, I] and [dirs, 4H, H]); counted as
    that LSTM: seq * batch * dirs * 4H * (I + H)."""
    x, w, r = (h._shape(g, node.input[i]) for i in range(3))
    seq, batch, steps = x[0], x[1], x[0] * x[1] * w[0]
    return h.OpCost(steps * w[2] * (w[1] + r[1]), steps * w[2] * 2, (seq, w[0], batch, r[1]))


QLINEAR_ELEMENTWISE = ("QLinearAdd QLinearMul QLinearSigmoid QLinearLeakyRelu QLinearSoftmax QLinearConcat "
                       "QLinearGlobalAveragePool QLinearAveragePool QLinearReduceMean QLinearWhere").split()

QUANT_HANDLERS: dict[str, h.Handler] = {
    "QLinearConv": _q(h.conv_cost, xi=0, wi=3, bi=8),
    "ConvInteger": _q(h.conv_cost, xi=0, wi=1, bi=None),
    "QLinearMatMul": _q(h.matmul_cost, ai=0, bi=3),
    "MatMulInteger": _q(h.matmul_cost, ai=0, bi=1),
    f"{MS}.QGemm": _q(h.gemm_cost, ai=0, bi=3, ci=6),
    f"{MS}.QLinearConv": _q(h.conv_cost, xi=0, wi=3, bi=8),
    f"{MS}.DynamicQuantizeMatMul": _q(h.matmul_cost, ai=0, bi=1),
    f"{MS}.MatMulIntegerToFloat": _q(h.matmul_cost, ai=0, bi=1),
    f"{MS}.FusedConv": h.conv,
    f"{MS}.FusedGemm": h.gemm,
    f"{MS}.FusedMatMul": _fused_matmul,
    f"{MS}.DynamicQuantizeLSTM": dynamic_quantize_lstm,
    "QuantizeLinear": h.per_output(1),  # one scale-round-clamp per element
    "DequantizeLinear": h.per_output(1),
    "DynamicQuantizeLinear": h.per_input(3),  # min/max scan, then scale-round per element
    **{f"{MS}.{op}": h.per_output(1) for op in QLINEAR_ELEMENTWISE},
    **{f"{MS}.{op}": h.per_output(1) for op in ("Gelu", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd")},
    **{f"{MS}.{op}": h.per_input(3) for op in ("SkipLayerNormalization", "SimplifiedLayerNormalization",
                                               "SkipSimplifiedLayerNormalization")},
    f"{MS}.QuantizeLinear": h.per_output(1),
    f"{MS}.DequantizeLinear": h.per_output(1),
}

_W, _B = "weights", "biases"
QUANT_ROLES: dict[str, dict[int, str]] = {
    "QLinearConv": {3: _W, 8: _B, **dict.fromkeys((1, 2, 4, 5, 6, 7), SKIP)},
    f"{MS}.QLinearConv": {3: _W, 8: _B, **dict.fromkeys((1, 2, 4, 5, 6, 7), SKIP)},
    "ConvInteger": {1: _W, 2: SKIP, 3: SKIP},
    "QLinearMatMul": {0: _W, 3: _W, **dict.fromkeys((1, 2, 4, 5, 6, 7), SKIP)},
    "MatMulInteger": {0: _W, 1: _W, 2: SKIP, 3: SKIP},
    f"{MS}.QGemm": {0: _W, 3: _W, 6: _B, **dict.fromkeys((1, 2, 4, 5, 7, 8), SKIP)},
    f"{MS}.DynamicQuantizeMatMul": {1: _W, 2: SKIP, 3: SKIP, 4: _B},
    f"{MS}.MatMulIntegerToFloat": {0: _W, 1: _W, **dict.fromkeys((2, 3, 4, 5), SKIP), 6: _B},
    f"{MS}.FusedConv": {1: _W, 2: _B},
    f"{MS}.FusedGemm": {0: _W, 1: _W, 2: _B},
    f"{MS}.FusedMatMul": {0: _W, 1: _W},
    # X, W, R, B, sequence_lens, initial_h, initial_c, P, W_scale, W_zero_point, R_scale, R_zero_point
    f"{MS}.DynamicQuantizeLSTM": {1: _W, 2: _W, 3: _B, 7: _W, **dict.fromkeys((8, 9, 10, 11), SKIP)},
    "QuantizeLinear": {1: SKIP, 2: SKIP},
    "DequantizeLinear": {1: SKIP, 2: SKIP},
    f"{MS}.QuantizeLinear": {1: SKIP, 2: SKIP},
    f"{MS}.DequantizeLinear": {1: SKIP, 2: SKIP},
    # QLinear element-wise ops: every constant they read is a scale or zero point, except the
    # operands of QLinearAdd/QLinearMul (inputs 0 and 3: a quantized bias, as Add's is)
    **{f"{MS}.{op}": dict.fromkeys(range(1, 12), SKIP) for op in QLINEAR_ELEMENTWISE},
    f"{MS}.QLinearAdd": {0: _B, 3: _B, **dict.fromkeys((1, 2, 4, 5, 6, 7), SKIP)},
    f"{MS}.QLinearMul": {0: "other_params", 3: "other_params", **dict.fromkeys((1, 2, 4, 5, 6, 7), SKIP)},
}

# The float op each one stands for (layer types and the latency join use the float name).
FLOAT_OP: dict[str, str] = {
    "QLinearConv": "Conv", "ConvInteger": "Conv", f"{MS}.QLinearConv": "Conv", f"{MS}.FusedConv": "Conv",
    "QLinearMatMul": "MatMul", "MatMulInteger": "MatMul", f"{MS}.DynamicQuantizeMatMul": "MatMul",
    f"{MS}.MatMulIntegerToFloat": "MatMul", f"{MS}.FusedMatMul": "MatMul",
    f"{MS}.QGemm": "Gemm", f"{MS}.FusedGemm": "Gemm",
}
WEIGHT_INPUT = {"QLinearConv": 3, f"{MS}.QLinearConv": 3, "ConvInteger": 1, f"{MS}.FusedConv": 1}
