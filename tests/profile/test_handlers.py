"""Closed-form Mult-Adds per handler, on graphs built here; output sizes from onnxruntime running them.

Oracle: out_h * out_w * C_out * (C_in / groups) * kh * kw * N for Conv, with out_h/out_w read from
onnxruntime's actual output (not from the profiler); M*N*K for Gemm; numel(out) * K for MatMul.
"""

from __future__ import annotations

import itertools
import math

import pytest
from onnx import helper

from effconv.profile import profile_onnx

C_IN, C_OUT, H, W = 4, 8, 11, 9


def _conv_attrs(stride, groups, dilation, padding) -> dict:
    attrs = dict(strides=[stride, stride], dilations=[dilation, dilation], group=groups)
    if padding == "explicit":
        attrs["pads"] = [1, 2, 0, 1]  # asymmetric: top, left, bottom, right
    elif padding != "none":
        attrs["auto_pad"] = padding
    return attrs


# onnxruntime refuses dilation with SAME_* auto_pad, so those pairs have no oracle and are left out.
CONV_CASES = [
    c
    for c in itertools.product([1, 3, 5], [1, 2], [1, 2, C_IN], [1, 2],
                               ["none", "explicit", "SAME_UPPER", "SAME_LOWER", "VALID"], [1, 3])
    if not (c[3] > 1 and c[4].startswith("SAME"))
]


@pytest.mark.parametrize("kernel,stride,groups,dilation,padding,batch", CONV_CASES)
def test_conv_matches_closed_form(kit, save, kernel, stride, groups, dilation, padding, batch):
    node = helper.make_node("Conv", ["x", "w"], ["y"], **_conv_attrs(stride, groups, dilation, padding))
    model = kit.make_model([node], {"x": [batch, C_IN, H, W]}, {"y": ["n", "c", "h", "w"]},
                           {"w": kit.weights(C_OUT, C_IN // groups, kernel, kernel)})
    (out,) = kit.ort_shapes(model, {"x": (batch, C_IN, H, W)})
    expected = out[2] * out[3] * C_OUT * (C_IN // groups) * kernel * kernel * batch
    layer = profile_onnx(save(model)).layers[0]
    assert layer.mult_adds == expected
    assert tuple(layer.output_shape) == out


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"strides": [2, 2]},
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
        {"group": 2, "dilations": [2, 2]},
    ],
    ids=["plain", "stride2", "pads+outpad", "same_upper", "grouped+dilated"],
)
@pytest.mark.parametrize("kernel", [2, 3])
def test_conv_transpose_matches_closed_form(kit, save, kernel, attrs, batch):
    groups = attrs.get("group", 1)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], **attrs)
    model = kit.make_model([node], {"x": [batch, C_IN, 5, 6]}, {"y": ["n", "c", "h", "w"]},
                           {"w": kit.weights(C_IN, C_OUT // groups, kernel, kernel)})
    (out,) = kit.ort_shapes(model, {"x": (batch, C_IN, 5, 6)})
    # every input pixel is multiplied by one (C_out / groups) x k x k slice of the kernel
    expected = batch * C_IN * 5 * 6 * (C_OUT // groups) * kernel * kernel
    layer = profile_onnx(save(model)).layers[0]
    assert layer.mult_adds == expected
    assert tuple(layer.output_shape) == out


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm_matches_closed_form(kit, save, trans_a, trans_b, bias):
    m, k, n = 3, 7, 5
    a_shape = [k, m] if trans_a else [m, k]
    inits = {"b": kit.weights(*([n, k] if trans_b else [k, n]))}
    if bias:
        inits["c"] = kit.weights(n)
    node = helper.make_node("Gemm", ["a", "b", "c"] if bias else ["a", "b"], ["y"], transA=trans_a, transB=trans_b)
    model = kit.make_model([node], {"a": a_shape}, {"y": ["m", "n"]}, inits)
    (out,) = kit.ort_shapes(model, {"a": tuple(a_shape)})
    assert out == (m, n)
    prof = profile_onnx(save(model))
    assert prof.layers[0].mult_adds == m * n * k
    assert prof.layers[0].type == "Fully Connected"
    assert (prof.totals.weights, prof.totals.biases) == (k * n, n if bias else 0)
    assert profile_onnx(save(model), convention="all").totals.mult_adds == m * n * k + (m * n if bias else 0)


@pytest.mark.parametrize(
    "a,b",
    [
        ((3, 4), (4, 5)),
        ((2, 3, 4), (4, 5)),  # batched A, 2-D B
        ((2, 1, 3, 4), (5, 4, 6)),  # broadcast batch dims
        ((4,), (4, 5)),  # 1-D A
        ((2, 3, 4), (4,)),  # 1-D B
        ((7, 2, 3, 4), (7, 2, 4, 5)),
    ],
)
@pytest.mark.parametrize("weight", [False, True], ids=["two-inputs", "weight-initializer"])
def test_matmul_matches_closed_form(kit, save, a, b, weight):
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    inputs = {"a": list(a)} if weight else {"a": list(a), "b": list(b)}
    inits = {"b": kit.weights(*b)} if weight else {}
    feeds = {k: tuple(v) for k, v in inputs.items()}
    rank = len(a) + len(b) - 2 if min(len(a), len(b)) == 1 else max(len(a), len(b))  # numpy.matmul rule
    model = kit.make_model([node], inputs, {"y": [f"d{i}" for i in range(rank)]}, inits)
    (out,) = kit.ort_shapes(model, feeds)
    layer = profile_onnx(save(model)).layers[0]
    assert layer.mult_adds == math.prod(out) * a[-1]
    assert tuple(layer.output_shape) == out
    assert layer.type == ("Fully Connected" if weight else "MatMul")
    assert layer.weights == (math.prod(b) if weight else 0)
