"""The float16 pass on hand-built ONNX graphs, checked against numpy in float32."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.export.fp16 import FP16_MAX, convert_to_fp16


def _gemm_relu(weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """y = relu(x @ W^T + b), x: [2, k]."""
    k, n = weight.shape[1], weight.shape[0]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, n])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("keep_io", [True, False])
def test_gemm_matches_numpy_within_fp16_rounding(keep_io):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((5, 8), dtype=np.float32), rng.standard_normal(5, dtype=np.float32)
    x = rng.standard_normal((2, 8), dtype=np.float32)
    half = convert_to_fp16(_gemm_relu(w, b), keep_io_fp32=keep_io)
    onnx.checker.check_model(half, full_check=True)
    io_type = TensorProto.FLOAT if keep_io else TensorProto.FLOAT16
    assert half.graph.input[0].type.tensor_type.elem_type == io_type
    assert half.graph.output[0].type.tensor_type.elem_type == io_type
    assert {i.data_type for i in half.graph.initializer} == {TensorProto.FLOAT16}
    y = _run(half, x if keep_io else x.astype(np.float16))
    assert y.dtype == (np.float32 if keep_io else np.float16)
    # Oracle: the same arithmetic with weights rounded to float16, in float64.
    w16, b16 = w.astype(np.float16).astype(np.float64), b.astype(np.float16).astype(np.float64)
    ref = np.maximum(x.astype(np.float16).astype(np.float64) @ w16.T + b16, 0)
    assert np.allclose(y, ref, rtol=4e-3, atol=4e-3)  # output rounding: 2^-11 relative, plus sums
    assert not np.allclose(_run(_gemm_relu(w * 2, b), x), ref, rtol=4e-3, atol=4e-3)  # the check can fail


def test_large_weights_saturate_instead_of_overflowing():
    w = np.array([[1e6, -1e6, 1.0]], np.float32)
    half = convert_to_fp16(_gemm_relu(w, np.zeros(1, np.float32)))
    stored = numpy_helper.to_array(next(i for i in half.graph.initializer if i.name == "W"))
    assert stored.tolist() == [[FP16_MAX, -FP16_MAX, 1.0]]
    assert np.isfinite(stored).all()


def test_resize_scales_stay_fp32_and_subgraphs_convert():
    """Resize's `scales` must stay float32 by the operator schema; If bodies convert like the graph."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    then_c = helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(np.array(2.0, np.float32)))
    else_c = helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(np.array(3.0, np.float32)))
    branch = lambda node, out: helper.make_graph(  # noqa: E731
        [node], "b", [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, [])])
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
        helper.make_node("If", ["cond"], ["k"], then_branch=branch(then_c, "t"), else_branch=branch(else_c, "e")),
        helper.make_node("Mul", ["r", "k"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])],
        [scales, numpy_helper.from_array(np.array(True), "cond")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    half = convert_to_fp16(model)
    onnx.checker.check_model(half, full_check=True)
    inits = {i.name: i.data_type for i in half.graph.initializer}
    assert inits["scales"] == TensorProto.FLOAT
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    y = _run(half, x)
    assert np.array_equal(y, 2 * np.repeat(np.repeat(x, 2, axis=2), 2, axis=3))  # exact in fp16
