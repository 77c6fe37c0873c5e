"""Embedded initializers must hold exactly dims x item size bytes (the message names the tensor and
both counts), for small initializers (kept in the skeleton) and large ones (made typed inputs)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from effconv.errors import InvalidInputError
from effconv.profile import profile_onnx
from effconv.profile.graph import SMALL_INIT


def _model(path, out_channels: int, extra_bytes: int):
    """Conv with an out_channels x 4 x 3 x 3 float weight whose raw_data is `extra_bytes` off."""
    w = np.ones((out_channels, 4, 3, 3), np.float32)
    data = w.tobytes()
    data = data + b"\0" * extra_bytes if extra_bytes >= 0 else data[:extra_bytes]
    init = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=w.shape, raw_data=data)  # unchecked
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_channels, 6, 6])], [init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path, w.size


@pytest.mark.parametrize("out_channels", [2, 64, 4096])  # 72, 2,304 and 147,456 elements
@pytest.mark.parametrize("extra", [0, -4, 1, 200])
def test_wrong_byte_count_is_refused_on_both_sides_of_the_cut(tmp_path, out_channels, extra):
    path, elements = _model(tmp_path / "m.onnx", out_channels, extra)
    assert (elements > SMALL_INIT) == (out_channels > 2)
    if extra == 0:
        assert profile_onnx(path).totals.weights == elements
        return
    with pytest.raises(InvalidInputError) as err:
        profile_onnx(path)
    assert f"holds {4 * elements + extra} bytes where its shape" in str(err.value)
