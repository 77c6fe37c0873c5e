"""An Einsum index that is 1 in one operand and n in another broadcasts to n in ONNX Runtime, while
ONNX shape inference keeps the size it met (and accepts a declared output built that way). Found by
the structure-aware fuzzer (ONNX Runtime's output shape as the oracle): the profile now takes the
shape the runtime computes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from effconv.profile import profile_onnx


def _model(path, declared):
    inputs = [helper.make_tensor_value_info("x1", TensorProto.FLOAT, [2, 1, 1]),
              helper.make_tensor_value_info("x2", TensorProto.FLOAT, [2, 2]),
              helper.make_tensor_value_info("x3", TensorProto.FLOAT, [2])]
    node = helper.make_node("Einsum", ["x1", "x2", "x3"], ["y"], equation="aec,ed,b->bcae")
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, declared)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize("declared", [[2, 1, 2, 1], ["p", "q", "r", "s"]])
def test_broadcast_index_takes_the_runtime_shape(tmp_path, declared):
    ort = pytest.importorskip("onnxruntime")
    path = _model(tmp_path / "e.onnx", declared)
    feeds = {"x1": np.ones((2, 1, 1), np.float32), "x2": np.ones((2, 2), np.float32), "x3": np.ones(2, np.float32)}
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert y.shape == (2, 1, 2, 2)
    (layer,) = profile_onnx(path).layers
    assert layer.output_shape == y.shape
    # sizes a=2 e=2 c=1 d=2 b=2: 'aec,ed' touches a,e,c,d (8); then with 'b': a,e,c,b (8)
    assert layer.mult_adds == 16
