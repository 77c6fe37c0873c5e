"""Random number generators are known ops: no Mult-Adds, not unsupported, --strict passes.

Found by benchmarks/corpus_exact.py --dynamic-batch 2: ViTMAE's random masking (`torch.rand(batch,
seq)`) exports as RandomUniformLike once the batch is dynamic, and --strict then refused the model.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.profile import profile_onnx


def _model(op: str) -> onnx.ModelProto:
    shape = [1, 4, 8, 8]
    if op.endswith("Like"):
        noise = helper.make_node(op, ["x"], ["noise"], name="noise", dtype=TensorProto.FLOAT)
    elif op == "Bernoulli":
        noise = helper.make_node(op, ["p"], ["noise"], name="noise", dtype=TensorProto.FLOAT)
    else:
        noise = helper.make_node(op, [], ["noise"], name="noise", shape=shape, dtype=TensorProto.FLOAT)
    nodes = [noise, helper.make_node("Add", ["x", "noise"], ["h"], name="add"),
             helper.make_node("Conv", ["h", "w"], ["y"], name="conv")]
    inits = [numpy_helper.from_array(np.ones((6, 4, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.full(shape, 0.5, np.float32), "p")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 6, 6])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("op", ["RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal",
                                "Bernoulli"])
def test_random_ops_are_known(tmp_path, op):
    path = tmp_path / f"{op}.onnx"
    onnx.save(_model(op), str(path))
    prof = profile_onnx(path)
    assert not any(k.startswith(op) for k in prof.unsupported), prof.unsupported
    assert prof.totals.mult_adds == 6 * 6 * 6 * 4 * 9
    assert prof.complete is True
    profile_onnx(path, strict=True)
