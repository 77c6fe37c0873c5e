"""A Conv whose input shape cannot be known before running the model: the profile says its total is a
lower bound (complete False, the node listed in `uncounted` with why), --strict refuses it (exit 3),
and the CLI and JSON say so. Also: no op is both zero-cost and unsupported, and QLinearConv is counted.

Oracle: closed-form Mult-Adds of the layers whose shapes are static (the lower bound itself).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.errors import InvalidInputError
from effconv.profile import profile_onnx

STATIC_CONV = 8 * 16 * 16 * (4 * 9)  # conv_static: [1, 4, 16, 16] -> [1, 8, 16, 16], 3x3, pad 1


def _model(nodes, inputs, outputs, inits):
    vi_in = [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()]
    vi_out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", "c", "h", "w"]) for n in outputs]
    m = helper.make_model(helper.make_graph(nodes, "g", vi_in, vi_out,
                                            [numpy_helper.from_array(v, k) for k, v in inits.items()]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _w(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def after_nonzero():
    """conv_static, then rows kept up to the count of NonZero(mask): [1, 8, n, 16] -> conv_dyn -> Relu."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], name="conv_static", pads=[1, 1, 1, 1]),
        helper.make_node("NonZero", ["mask"], ["nz"], name="nonzero"),
        helper.make_node("Shape", ["nz"], ["nz_shape"], name="shape"),
        helper.make_node("Gather", ["nz_shape", "one"], ["count"], name="count"),
        helper.make_node("Slice", ["h", "zero", "count", "two"], ["rows"], name="keep_rows"),
        helper.make_node("Conv", ["rows", "w2"], ["c"], name="conv_dyn", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = {"w1": _w(8, 4, 3, 3), "w2": _w(8, 8, 3, 3), "one": np.array([1], np.int64),
             "zero": np.array([0], np.int64), "two": np.array([2], np.int64)}
    return _model(nodes, {"x": (TensorProto.FLOAT, [1, 4, 16, 16]), "mask": (TensorProto.FLOAT, [16])}, ["y"], inits)


def reshape_from_data():
    """conv_static, flattened, then Reshape to a shape given as a runtime int64 input -> conv_dyn."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], name="conv_static", pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["h", "target"], ["r"], name="reshape_dynamic"),
        helper.make_node("Conv", ["r", "w2"], ["c"], name="conv_dyn", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = {"w1": _w(8, 4, 3, 3), "w2": _w(8, 8, 3, 3)}
    return _model(nodes, {"x": (TensorProto.FLOAT, [1, 4, 16, 16]), "target": (TensorProto.INT64, [4])}, ["y"], inits)


GRAPHS = {"after_nonzero": after_nonzero, "reshape_from_data": reshape_from_data}


@pytest.fixture(params=list(GRAPHS))
def dynamic_path(request, tmp_path):
    path = tmp_path / f"{request.param}.onnx"
    onnx.save(GRAPHS[request.param](), str(path))
    return path


def test_profile_is_a_lower_bound(dynamic_path):
    prof = profile_onnx(dynamic_path)
    assert prof.totals.mult_adds == STATIC_CONV  # only conv_static counted
    assert prof.complete is False
    assert [(u.node, u.op_type) for u in prof.uncounted] == [("conv_dyn", "Conv")]
    assert "shape unknown" in prof.uncounted[0].reason
    doc = prof.to_dict()
    assert doc["complete"] is False
    assert [{k: u[k] for k in ("node", "op_type")} for u in doc["uncounted"]] == [{"node": "conv_dyn", "op_type": "Conv"}]
    assert "shape unknown" in doc["uncounted"][0]["reason"]


def test_strict_refuses_a_lower_bound(dynamic_path):
    with pytest.raises(InvalidInputError) as err:
        profile_onnx(dynamic_path, strict=True)
    assert "conv_dyn" in str(err.value) or "Conv" in str(err.value)


def test_cli_says_lower_bound(cli, dynamic_path, tmp_path):
    out = tmp_path / "p.json"
    res = cli("profile", dynamic_path, "--no-latency", "--json", out)
    assert res.code == 0, res.stderr
    assert "lower bound" in (res.stdout + res.stderr).lower()
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and doc["totals"]["mult_adds"] == STATIC_CONV
    strict = cli("profile", dynamic_path, "--no-latency", "--strict")
    assert strict.code == 3, (strict.stdout, strict.stderr)


def test_no_op_is_both_zero_cost_and_unsupported(dynamic_path):
    """Paper convention: NonZero/Shape/Gather/Slice/Reshape are zero-cost and Relu costs 0, whatever
    their shapes; only the Conv is missing (and it is in `uncounted`)."""
    from effconv.profile.handlers import HANDLERS, zero

    prof = profile_onnx(dynamic_path)
    listed = {k.split(" (")[0] for k in prof.unsupported}
    zero_cost = {op for op, h in HANDLERS.items() if h is zero}
    assert not listed & zero_cost, prof.unsupported
    assert "Relu" not in listed, prof.unsupported
    counted_zero = {lc.op_type for lc in prof.layers if lc.op_type != "Conv"}
    assert not listed & counted_zero, prof.unsupported


def qlinear_conv():
    """QuantizeLinear -> QLinearConv (int8 weight, per-tensor) -> DequantizeLinear."""
    rng = np.random.default_rng(0)
    inits = {
        "xs": np.array(0.02, np.float32), "xz": np.array(128, np.uint8),
        "w": rng.integers(-127, 127, (8, 4, 3, 3), dtype=np.int8), "ws": np.array(0.01, np.float32),
        "wz": np.array(0, np.int8), "ys": np.array(0.05, np.float32), "yz": np.array(128, np.uint8),
        "b": np.zeros(8, np.int32),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q"),
        helper.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["yq"],
                         name="qconv", pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dq"),
    ]
    return _model(nodes, {"x": (TensorProto.FLOAT, [1, 4, 16, 16])}, ["y"], inits)


def test_qlinear_conv_is_counted_not_unsupported(tmp_path):
    path = tmp_path / "qconv.onnx"
    onnx.save(qlinear_conv(), str(path))
    prof = profile_onnx(path)
    assert not any(k.startswith("QLinearConv") for k in prof.unsupported), prof.unsupported
    assert prof.totals.mult_adds == STATIC_CONV
    assert prof.totals.weights == 8 * 4 * 9
    assert prof.totals.weight_bytes["int8"] == 8 * 4 * 9
    assert {lc.name: lc.type for lc in prof.layers}["qconv"] == "Conv 3x3"
    assert prof.complete is True
    profile_onnx(path, strict=True)


@pytest.mark.parametrize("name,feeds,conv_dyn_input", [
    ("after_nonzero", {"mask": np.array([1, 0, 1, 1, 0] + [0] * 11, np.float32)}, (1, 8, 3, 16)),
    ("reshape_from_data", {"target": np.array([1, 8, 32, 8], np.int64)}, (1, 8, 32, 8)),
])
def test_graphs_are_real_and_data_decides_the_shape(name, feeds, conv_dyn_input):
    """The graphs run in ONNX Runtime; conv_dyn's input shape is set by the data fed, not the file."""
    import onnxruntime as ort

    m = GRAPHS[name]()
    m.graph.output.extend([onnx.ValueInfoProto(name=m.graph.node[-2].input[0])])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"x": np.ones((1, 4, 16, 16), np.float32), **feeds})
    assert outs[-1].shape == conv_dyn_input
