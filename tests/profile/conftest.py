"""Builders of small ONNX graphs (onnx.helper) and an onnxruntime runner, shared by the profile tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def make_model(nodes, inputs, outputs, inits=(), *, opset=OPSET, ir_version=8) -> onnx.ModelProto:
    """inputs/outputs: {name: shape}; inits: {name: ndarray} or TensorProtos."""
    vi_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()]
    vi_out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()]
    tensors = [numpy_helper.from_array(v, k) for k, v in dict(inits).items()] if isinstance(inits, dict) else list(inits)
    graph = helper.make_graph(list(nodes), "g", vi_in, vi_out, tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def weights(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def ort_output_shapes(model: onnx.ModelProto, feeds: dict[str, tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Run the graph on zeros with onnxruntime; return every output's real shape (the oracle)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {k: np.zeros(v, np.float32) for k, v in feeds.items()})
    return [tuple(o.shape) for o in outs]


@pytest.fixture
def save(tmp_path):
    """save(model, name="m.onnx") -> Path of the model written under tmp_path."""

    def _save(model: onnx.ModelProto, name: str = "m.onnx") -> Path:
        path = tmp_path / name
        path.write_bytes(model.SerializeToString())
        return path

    return _save


@pytest.fixture
def conv_model():
    """A valid one-Conv model with a symbolic batch (input x: [N, 4, 8, 8])."""
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], name="conv")
    return make_model([node], {"x": ["N", 4, 8, 8]}, {"y": ["N", 6, 8, 8]},
                      {"w": weights(6, 4, 3, 3), "b": weights(6)})


@pytest.fixture(scope="session")
def kit():
    """The builders above, for tests (importlib import mode: tests cannot import conftest)."""
    import types

    return types.SimpleNamespace(make_model=make_model, weights=weights, ort_shapes=ort_output_shapes)

