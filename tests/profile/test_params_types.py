"""Parameters counted once and kept apart (weights / biases / normalization); paper layer types."""

from __future__ import annotations

import pytest
from onnx import helper

from effconv.profile import profile_onnx


def _conv(name, x, w, y, b=None, **attrs):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name=name, **attrs)


def test_shared_weight_counted_once(kit, save):
    nodes = [_conv("c1", "x", "w", "h"), _conv("c2", "h", "w", "y")]  # the same 4x4x3x3 tensor twice
    model = kit.make_model(nodes, {"x": [1, 4, 8, 8]}, {"y": [1, 4, 4, 4]}, {"w": kit.weights(4, 4, 3, 3)})
    prof = profile_onnx(save(model))
    assert prof.totals.weights == 4 * 4 * 3 * 3
    assert [lc.weights for lc in prof.layers] == [144, 0]
    assert prof.totals.mult_adds == 6 * 6 * 4 * 4 * 9 + 4 * 4 * 4 * 4 * 9  # both layers still cost


def test_weight_through_identity_and_listed_as_input(kit, save):
    """An initializer also listed as a graph input (IR 3 style), read directly and via Identity."""
    nodes = [helper.make_node("Identity", ["w"], ["w_alias"]), _conv("c1", "x", "w_alias", "h"),
             _conv("c2", "h", "w", "y")]
    model = kit.make_model(nodes, {"x": [1, 4, 8, 8], "w": [4, 4, 3, 3]}, {"y": [1, 4, 4, 4]},
                           {"w": kit.weights(4, 4, 3, 3)})
    prof = profile_onnx(save(model))
    assert prof.totals.weights == 144
    assert list(prof.input_shapes) == ["x"]  # the initializer is not an input to set
    assert prof.layers[1].type == "Conv 3x3"  # typed through the Identity


def test_biases_and_normalization_kept_apart(kit, save):
    nodes = [_conv("c", "x", "w", "h", "b"),
             helper.make_node("BatchNormalization", ["h", "s", "o", "m", "v"], ["y"], name="bn")]
    inits = {"w": kit.weights(6, 4, 1, 1), "b": kit.weights(6), "s": kit.weights(6), "o": kit.weights(6),
             "m": kit.weights(6), "v": abs(kit.weights(6))}
    model = kit.make_model(nodes, {"x": [1, 4, 5, 5]}, {"y": [1, 6, 5, 5]}, inits)
    t = profile_onnx(save(model)).totals
    assert (t.weights, t.biases, t.norm_params, t.other_params) == (24, 6, 24, 0)


@pytest.mark.parametrize(
    "c_in,c_out,groups,kernel,expected",
    [
        (8, 16, 1, (1, 1), "Conv 1x1"),
        (8, 8, 8, (3, 3), "Conv DW 3x3"),
        (8, 16, 8, (3, 3), "Conv DW 3x3"),  # channel multiplier 2 is still depthwise
        (8, 8, 8, (5, 5), "Conv DW 5x5"),
        (3, 8, 1, (3, 3), "Conv 3x3"),
        (3, 8, 1, (5, 5), "Conv 5x5"),
        (3, 8, 1, (11, 11), "Conv 11x11"),
        (8, 8, 2, (3, 3), "Conv 3x3 grouped"),
        (8, 8, 4, (1, 1), "Conv 1x1 grouped"),
        (8, 8, 1, (1, 7), "Conv 1x7"),
        (1, 4, 1, (3, 3), "Conv 3x3"),  # one input channel, groups 1: standard, not depthwise
    ],
)
def test_conv_layer_types(kit, save, c_in, c_out, groups, kernel, expected):
    node = _conv("c", "x", "w", "y", group=groups, pads=[0, 0, 0, 0])
    model = kit.make_model([node], {"x": [1, c_in, 16, 16]}, {"y": ["n", "c", "h", "w"]},
                           {"w": kit.weights(c_out, c_in // groups, *kernel)})
    assert profile_onnx(save(model)).layers[0].type == expected


def test_non_float_constants_are_not_parameters(kit, save):
    import numpy as np

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = kit.make_model(nodes, {"x": [2, 3, 4]}, {"y": [6, 4]}, {"shape": np.array([6, 4], np.int64)})
    prof = profile_onnx(save(model))
    assert prof.totals.weights + prof.totals.other_params == 0
    assert prof.layers[0].output_shape == (6, 4)  # data propagation through the small initializer


def test_large_weights_via_constant_node(kit, save):
    from onnx import numpy_helper

    const = helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(kit.weights(32, 64)))
    mm = helper.make_node("MatMul", ["x", "w"], ["y"])
    model = kit.make_model([const, mm], {"x": [1, 32]}, {"y": [1, 64]})
    prof = profile_onnx(save(model))
    assert prof.layers[1].type == "Fully Connected"
    assert (prof.totals.mult_adds, prof.totals.weights) == (32 * 64, 32 * 64)


def test_integer_control_input_of_a_constant_chain_is_not_a_parameter(kit, save):
    """A float constant computed at load time through CumSum (timm's Fourier position encoding):
    CumSum's int32 axis is a control input, not a stored weight; only the float tensor is counted,
    as the file's float constants say (found on timm's edgenext_xx_small)."""
    import numpy as np

    nodes = [helper.make_node("CumSum", ["grid", "axis"], ["pos"], name="cumsum"),
             helper.make_node("Add", ["x", "pos"], ["y"], name="add")]
    inits = {"grid": kit.weights(1, 4, 3, 3), "axis": np.array(2, dtype=np.int32)}
    model = kit.make_model(nodes, {"x": [1, 4, 3, 3]}, {"y": [1, 4, 3, 3]}, inits)
    t = profile_onnx(save(model)).totals
    assert t.weights + t.biases + t.norm_params + t.other_params == 36
    assert t.weight_bytes == {"fp32": 36 * 4}


def test_mask_made_from_a_shape_is_not_a_parameter(kit, save):
    """x * eye(t): an identity matrix made from a shape (EyeLike of ConstantOfShape), read by an
    element-wise Mul, stores no data; the file's float constants (none) are the parameters (found
    on timm's bat_resnext26ts). In a weight slot such a tensor still counts (old IR: test_old_ir)."""
    import numpy as np
    from onnx import TensorProto

    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [helper.make_node("ConstantOfShape", ["side"], ["square"], value=zero),
             helper.make_node("EyeLike", ["square"], ["eye"]),
             helper.make_node("Mul", ["x", "eye"], ["y"], name="mask")]
    model = kit.make_model(nodes, {"x": [1, 1, 4, 4]}, {"y": [1, 1, 4, 4]}, {"side": np.array([4, 4], np.int64)})
    t = profile_onnx(save(model)).totals
    assert t.weights + t.biases + t.norm_params + t.other_params == 0
