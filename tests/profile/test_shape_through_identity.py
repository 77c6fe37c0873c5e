"""A Reshape whose target shape is an Identity of an int64 initializer has a static output shape.

torch's exporter shares equal constants between nodes through Identity: BiT's weight-standardized
convs all reshape their normalized weight back with `reshape_as`, and every weight of one shape then
reads the same shape tensor through its own Identity. The Conv reading that weight must be counted.
Oracle: closed form, out elements x C_in x kh x kw = (8 x 6 x 6) x (4 x 3 x 3).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.profile import profile_onnx

MULT_ADDS = 8 * 6 * 6 * 4 * 3 * 3


def _model(identity: bool, op_between: bool) -> onnx.ModelProto:
    nodes, src, shape = [], "w_flat", "s"
    if op_between:  # the weight is computed at run time from the stored one (BiT: batch_norm)
        nodes.append(helper.make_node("Relu", ["w_flat"], ["w_mid"], name="standardize"))
        src = "w_mid"
    if identity:
        nodes.append(helper.make_node("Identity", ["s"], ["s_shared"], name="shared_shape"))
        shape = "s_shared"
    nodes += [helper.make_node("Reshape", [src, shape], ["w"], name="reshape_as"),
              helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
        [numpy_helper.from_array(np.ones((1, 8, 36), np.float32), "w_flat"),
         numpy_helper.from_array(np.array([8, 4, 3, 3], np.int64), "s")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("op_between", [False, True], ids=["stored", "computed"])
@pytest.mark.parametrize("identity", [False, True], ids=["direct", "identity"])
def test_conv_weight_reshaped_through_identity_shape(tmp_path, identity, op_between):
    path = tmp_path / "m.onnx"
    onnx.save(_model(identity, op_between), str(path))
    prof = profile_onnx(path)
    assert prof.totals.mult_adds == MULT_ADDS, prof.uncounted
    assert prof.complete is True
    assert prof.totals.weights == 8 * 36
    assert {lc.name: lc.type for lc in prof.layers}["conv"] == "Conv 3x3"
