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
