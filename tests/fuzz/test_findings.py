"""Regression tests for what the structured fuzzer (tests/fuzz/structured.py,
`python benchmarks/fuzz_profile.py --structured`) found: each model is the smallest form of a
fuzz input that broke the contract, built in code."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.profile import profile_onnx


def _save(tmp_path, nodes, inputs, outputs, inits, opset: int):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    return path


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _bf16(name, arr):
    raw = (np.ascontiguousarray(arr, np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    return helper.make_tensor(name, TensorProto.BFLOAT16, arr.shape, raw, raw=True)


@pytest.mark.parametrize("opset", [11, 16])
def test_a_type_the_op_does_not_take_leaves_the_node_unknown(tmp_path, opset):
    """Structured fuzz, seed 0, inputs 51 and 196: a bf16 Conv feeding a Reshape at opset 11 (Reshape-5
    takes no bf16), a fp16 Range at opset 16. The checker and whole-graph inference let them through;
    per-node inference (effconv.profile.propagate) raised onnx's ValidationError, which reached the
    CLI's catch-all: exit 5, "rerun with --debug". Now the node stays unknown, as for any inference
    error, and the Conv is counted."""
    x = helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [None, None])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Expand", ["one", "two"], ["e"]),
        helper.make_node("Shape", ["e"], ["s"]),
        helper.make_node("ReduceMin", ["s"], ["m"], keepdims=1),  # not data-propagated by ONNX
        helper.make_node("Concat", ["neg", "m"], ["shape"], axis=0),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
    ]
    inits = [_bf16("w", np.ones((2, 2, 1, 1), np.float32)), _i64("one", [1, 1]), _i64("two", [2]),
             _i64("neg", [-1])]
    if opset == 16:  # the Range form: fp16 start/limit/delta, which Range-11 does not take
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])
        nodes[1] = helper.make_node("Range", ["r0", "r1", "r2"], ["e"])
        inits[:3] = [numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w"),
                     *(numpy_helper.from_array(np.array(v, np.float16), n) for n, v in
                       (("r0", 0), ("r1", 4), ("r2", 1)))]
    prof = profile_onnx(_save(tmp_path, nodes, [x], [y], inits, opset), batch=1)
    conv = next(lc for lc in prof.layers if lc.op_type == "Conv")
    assert conv.mult_adds == 1 * 2 * 4 * 4 * 2 and conv.output_shape == (1, 2, 4, 4)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("opset", [10, 17, 21, 22])
def test_ceil_mode_pool_drops_a_window_that_starts_in_the_padding(tmp_path, op, opset):
    """Structured fuzz (misc_ops, MaxPool): kernel [3, 1], strides 2, ceil_mode on a 3x4 input.
    ONNX shape inference before opset 22 says 1x3 (it keeps a last column window that starts past
    the input), ONNX Runtime, PyTorch and onnx.reference make 1x2, so the profile gave the next Conv
    3 columns where ONNX Runtime computes 2. Now the pool's shape follows the runtime rule and the
    nodes below are inferred again from it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)
    nodes = [helper.make_node(op, ["x"], ["p"], ceil_mode=1, kernel_shape=[3, 1], strides=[2, 2]),
             helper.make_node("Conv", ["p", "w"], ["c"]),
             helper.make_node("Shape", ["c"], ["s"]),
             helper.make_node("Reshape", ["c", "s"], ["y"])]  # a folded shape of the corrected tensor
    w = numpy_helper.from_array(np.ones((2, 8, 1, 1), np.float32), "w")
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    plain = m.SerializeToString()
    m = onnx.shape_inference.infer_shapes(m)  # the file declares what ONNX infers (as exporters write it)
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    prof = profile_onnx(path)
    shapes = {lc.op_type: lc.output_shape for lc in prof.layers}
    assert shapes[op] == (1, 8, 1, 2) and shapes["Conv"] == (1, 2, 1, 2) and shapes["Reshape"] == (1, 2, 1, 2)
    assert next(lc for lc in prof.layers if lc.op_type == "Conv").mult_adds == 1 * 2 * 1 * 2 * 8
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # its folding trusts ONNX's shapes
    sess = ort.InferenceSession(plain, so, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.zeros((1, 8, 3, 4), np.float32)})[0].shape == (1, 2, 1, 2)


def test_ceil_mode_qlinear_average_pool_uses_the_runtime_rule():
    from effconv.profile.msshapes import _pool

    assert _pool((1, 8, 3, 4), {"kernel_shape": [3, 1], "strides": [2, 2], "ceil_mode": 1}) == (1, 8, 1, 2)
    assert _pool((1, 1, 5, 5), {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}) == (1, 1, 3, 3)
    assert _pool((1, 1, 5, 5), {"kernel_shape": [2, 2], "strides": [2, 2]}) == (1, 1, 2, 2)
    assert _pool((1, 1, 5, 5), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2], "ceil_mode": 1}) \
        == (1, 1, 3, 3)


def test_a_shape_the_node_computes_wins_over_a_declared_one(tmp_path):
    """Structured fuzz, seed 2, input 1439 (corpus shape_chain.onnx, Conv swapped for ConvTranspose):
    the file declares y [1, 2, 5, 5], the ConvTranspose's input is padded by a folded Concat, so
    whole-graph inference cannot compute y and keeps the declaration; the profile reported
    [1, 2, 5, 5] where ONNX Runtime makes [1, 2, 9, 9]. Now the walk infers a node whose inputs it
    resolved itself even when its outputs are declared, and its own shape wins."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 5, 5])
    nodes = [
        helper.make_node("ConstantOfShape", ["k"], ["zeros"], value=helper.make_tensor("v", TensorProto.INT64, [1], [0])),
        helper.make_node("Concat", ["zeros", "hw", "zeros", "hw"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("ConvTranspose", ["p", "w"], ["y"]),
    ]
    inits = [_i64("k", [2]), _i64("hw", [1, 1]), numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")]
    prof = profile_onnx(_save(tmp_path, nodes, [x], [y], inits, 17))
    ct = next(lc for lc in prof.layers if lc.op_type == "ConvTranspose")
    assert ct.output_shape == (1, 2, 9, 9) and ct.mult_adds == 1 * 2 * 7 * 7 * 2 * 3 * 3


def test_conv_transpose_same_ignores_output_padding(tmp_path):
    """Structured fuzz, seed 0, input 9223 of the 10,000-input run: a 3-D ConvTranspose with
    auto_pad SAME_UPPER, strides [1, 3, 3] and output_padding [0, 1, 0] on [4, 3, 3]. The spec and
    ONNX Runtime make input * stride = [4, 9, 9] (output_padding is ignored under SAME); ONNX
    inference adds it ([4, 10, 9]), and the profile reported that shape and counted the layers below
    on it. The walk now sets the spec's shape and infers the nodes below again."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 5)
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["t"], auto_pad="SAME_UPPER", dilations=[1, 2, 1],
                              kernel_shape=[4, 4, 4], output_padding=[0, 1, 0], strides=[1, 3, 3]),
             helper.make_node("AveragePool", ["t"], ["y"], kernel_shape=[2, 2, 2])]
    w = numpy_helper.from_array(np.ones((4, 3, 4, 4, 4), np.float32), "w")
    path = _save(tmp_path, nodes, [x], [y], [w], 17)
    shapes = {lc.op_type: lc.output_shape for lc in profile_onnx(path).layers}
    assert shapes["ConvTranspose"] == (1, 3, 4, 9, 9) and shapes["AveragePool"] == (1, 3, 3, 8, 8)
    import onnxruntime as ort

    out = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.zeros((1, 4, 4, 3, 3), np.float32)})[0]
    assert out.shape == (1, 3, 3, 8, 8)


def test_fused_matmul_with_transposes_has_a_shape(tmp_path):
    """Structured fuzz (ms_ops, FusedMatMul transB=1): com.microsoft shape rules left a FusedMatMul
    with transA/transB unknown, so the Conv below it was "shape unknown" (a lower bound) although
    ONNX Runtime ran it. The transposes are applied now."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 60])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)
    nodes = [helper.make_node("FusedMatMul", ["x", "w"], ["m"], domain="com.microsoft", transB=1),
             helper.make_node("Reshape", ["m", "s"], ["r"]), helper.make_node("Conv", ["r", "cw"], ["y"])]
    inits = [numpy_helper.from_array(np.ones((6, 60), np.float32), "w"), _i64("s", [1, 6, 1, 1]),
             numpy_helper.from_array(np.ones((2, 6, 1, 1), np.float32), "cw")]
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 7
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    prof = profile_onnx(path)
    by_op = {lc.op_type: lc for lc in prof.layers}
    assert by_op["FusedMatMul"].output_shape == (1, 6) and by_op["FusedMatMul"].mult_adds == 360
    assert by_op["Conv"].output_shape == (1, 2, 1, 1) and by_op["Conv"].mult_adds == 12 and prof.complete


@pytest.mark.parametrize(("n", "stride", "k", "opad", "want"), [(3, 2, 1, 0, 5), (3, 3, 4, 1, 9), (4, 1, 3, 0, 4)])
def test_conv_transpose_same_is_never_larger_than_unpadded(tmp_path, n, stride, k, opad, want):
    """The first fix (input x stride) made the 10,000-input rerun report 11 ConvTranspose shapes ONNX
    Runtime disagrees with: with SAME its pads are never negative, so the output is
    min(input x stride, stride (n - 1) + output_padding + (k - 1) dilation + 1) (384 of 384
    configurations agree with ORT)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 3)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[stride],
                            kernel_shape=[k], output_padding=[opad])
    path = _save(tmp_path, [node], [x], [y], [numpy_helper.from_array(np.ones((1, 1, k), np.float32), "w")], 17)
    assert next(lc for lc in profile_onnx(path).layers).output_shape == (1, 1, want)
    import onnxruntime as ort

    out = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.zeros((1, 1, n), np.float32)})[0]
    assert out.shape == (1, 1, want)
