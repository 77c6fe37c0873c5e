"""The `all` convention's formulas (hand-derived), unknown ops listed, --strict, If subgraphs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from effconv.profile import profile_onnx

X = [2, 3, 8, 8]  # 384 elements


@pytest.mark.parametrize(
    "node,out_shape,expected",
    [
        (helper.make_node("Relu", ["x"], ["y"]), X, 384),  # 1 per element
        (helper.make_node("Add", ["x", "x"], ["y"]), X, 384),
        (helper.make_node("Sum", ["x", "x", "x"], ["y"]), X, 2 * 384),  # (inputs - 1) per element
        (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2]), [2, 3, 4, 4], 96 * 4),
        (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3]), [2, 3, 6, 6], 216 * 9),
        (helper.make_node("GlobalAveragePool", ["x"], ["y"]), [2, 3, 1, 1], 384),  # 1 per input element
        (helper.make_node("Softmax", ["x"], ["y"], axis=1), X, 3 * 384),
        (helper.make_node("LRN", ["x"], ["y"], size=3), X, 4 * 384),  # size + 1 per element
        (helper.make_node("Flatten", ["x"], ["y"]), [2, 192], 0),
    ],
    ids=["relu", "add", "sum3", "maxpool", "avgpool", "gap", "softmax", "lrn", "flatten"],
)
def test_all_convention_formulas(kit, save, node, out_shape, expected):
    model = kit.make_model([node], {"x": X}, {"y": out_shape})
    path = save(model)
    assert profile_onnx(path, convention="all").totals.mult_adds == expected
    assert profile_onnx(path, convention="paper").totals.mult_adds == 0  # declared zero-cost
    assert profile_onnx(path).unsupported == {}


@pytest.mark.parametrize("mode,taps", [("nearest", 0), ("linear", 4)])
def test_resize(kit, save, mode, taps):
    scales = np.array([1, 1, 2, 2], np.float32)
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)
    model = kit.make_model([node], {"x": X}, {"y": [2, 3, 16, 16]}, {"scales": scales})
    assert profile_onnx(save(model), convention="all").totals.mult_adds == taps * 2 * 3 * 16 * 16


def test_batchnorm_all_convention(kit, save):
    c = X[1]
    inits = {k: np.ones(c, np.float32) for k in "smbv"}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    model = kit.make_model([node], {"x": X}, {"y": X}, inits)
    prof = profile_onnx(save(model), convention="all")
    assert (prof.totals.mult_adds, prof.totals.norm_params, prof.totals.weights) == (384, 4 * c, 0)


def _custom_model(kit):
    nodes = [helper.make_node("Relu", ["x"], ["h"]),
             helper.make_node("FancyOp", ["h"], ["g"], domain="org.example"),
             helper.make_node("FancyOp", ["g"], ["y"], domain="org.example")]
    model = kit.make_model(nodes, {"x": X}, {"y": X})
    model.opset_import.append(helper.make_opsetid("org.example", 1))
    return model


def test_unknown_ops_are_listed_not_zero(kit, save):
    prof = profile_onnx(save(_custom_model(kit)))
    assert prof.unsupported == {"org.example.FancyOp": 2}


def test_strict_unknown_op_exits_3(kit, save, cli):
    path = save(_custom_model(kit))
    res = cli("profile", path, "--strict", "--no-latency")
    assert res.code == 3
    assert "org.example.FancyOp x2" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    ok = cli("profile", path, "--no-latency")
    assert ok.code == 0
    assert "org.example.FancyOp x2" in ok.stdout


def test_if_subgraph_reported_not_counted(kit, save, cli):
    def branch(name, op):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, X)
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_out"])], name, [], [out])

    cond = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("cv", TensorProto.BOOL, [], [True]))
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch("then", "Relu"),
                            else_branch=branch("else", "Sigmoid"))
    model = kit.make_model([cond, node], {"x": X}, {"y": X})
    prof = profile_onnx(save(model))
    assert prof.unsupported == {"If (subgraph not counted)": 1}
    res = cli("profile", save(model), "--strict", "--no-latency")
    assert res.code == 3 and "If (subgraph not counted)" in res.stderr


def test_if_with_zero_cost_branches_counts_zero(kit, save):
    """torch exports LocalResponseNorm with an If whose branches only reshape: 0 either way."""
    def branch(name, op):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_out"])], name, [], [out])

    cond = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("cv", TensorProto.BOOL, [], [True]))
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch("then", "Identity"),
                            else_branch=branch("else", "Flatten"))
    model = kit.make_model([cond, node], {"x": X}, {"y": ["a", "b"]})
    assert profile_onnx(save(model)).unsupported == {}
