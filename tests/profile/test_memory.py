"""Memory against hand-computed oracles: bytes by data type, activation bytes per layer, and the
peak of live activations (a tensor is live from its writer to its last reader; a node's inputs and
outputs are live together) in the stored order and in the best order the schedule search finds."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from effconv.profile import profile_onnx

B = 4 * 8 * 8 * 4  # bytes of one fp32 [1, 4, 8, 8] activation


def _conv(x, w, y, name):
    return helper.make_node("Conv", [x, w], [y], name=name)


def chain(kit, batch=1):
    """x -> Relu -> a -> Relu -> b -> Conv 1x1 (6 out) -> y."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2"),
             _conv("b", "w", "y", "conv")]
    return kit.make_model(nodes, {"x": [batch, 4, 8, 8]}, {"y": [batch, 6, 8, 8]}, {"w": kit.weights(6, 4, 1, 1)})


def test_chain_peak_is_the_largest_input_output_pair(kit, save):
    m = profile_onnx(save(chain(kit))).memory
    y = 6 * 8 * 8 * 4
    assert m.timeline == (2 * B, 2 * B, B + y)  # x+a, a+b, b+y
    assert (m.peak_bytes, m.peak_node) == (B + y, "conv")
    assert m.best_peak_bytes == m.peak_bytes  # a chain has one order
    assert (m.input_bytes, m.output_bytes, m.activation_bytes) == (B, y, 3 * B + y)


def test_batch_scales_every_figure(kit, save):
    one, four = (profile_onnx(save(chain(kit, b), f"b{b}.onnx")).memory for b in (1, 4))
    assert four.peak_bytes == 4 * one.peak_bytes and four.activation_bytes == 4 * one.activation_bytes


def test_residual_skip_stays_live_across_the_branch(kit, save):
    """x -> Conv -> Relu -> r; y = x + r: x is live until the Add, so the Relu holds x, a and r."""
    nodes = [_conv("x", "w", "a", "conv"), helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Add", ["x", "r"], ["y"], name="add")]
    model = kit.make_model(nodes, {"x": [1, 4, 8, 8]}, {"y": [1, 4, 8, 8]}, {"w": kit.weights(4, 4, 1, 1)})
    m = profile_onnx(save(model)).memory
    assert m.timeline == (2 * B, 3 * B, 3 * B)
    assert m.peak_bytes == 3 * B and m.peak_node == "relu"


def inception(kit):
    """Two branches from x (8 ch): Conv 1x1 to 16 ch, then Conv 1x1 to 4 ch; Concat. Stored
    interleaved (both wide tensors live at once): b1a, b2a, b1b, b2b, concat."""
    nodes = [_conv("x", "w1a", "b1", "b1a"), _conv("x", "w2a", "b2", "b2a"), _conv("b1", "w1b", "c1", "b1b"),
             _conv("b2", "w2b", "c2", "b2b"), helper.make_node("Concat", ["c1", "c2"], ["y"], axis=1, name="cat")]
    inits = {"w1a": kit.weights(16, 8, 1, 1), "w2a": kit.weights(16, 8, 1, 1), "w1b": kit.weights(4, 16, 1, 1),
             "w2b": kit.weights(4, 16, 1, 1)}
    return kit.make_model(nodes, {"x": [1, 8, 8, 8]}, {"y": [1, 8, 8, 8]}, inits)


def test_best_order_finishes_a_branch_first(kit, save, cli, tmp_path):
    x, wide, narrow = 8 * 64 * 4, 16 * 64 * 4, 4 * 64 * 4  # bytes: 2048, 4096, 1024
    m = profile_onnx(save(inception(kit))).memory
    # stored: b2a holds x + b1 + b2
    assert (m.peak_bytes, m.peak_node) == (x + 2 * wide, "b2a")
    # b1a, b1b, b2a, b2b, cat: at most x + c1 + b (x stays live for b2a)
    assert m.best_peak_bytes == x + narrow + wide
    assert m.peak_bytes - m.best_peak_bytes == 3072
    assert m.best_order == ("b1a", "b1b", "b2a", "b2b", "cat")
    out = tmp_path / "p.json"
    res = cli("profile", tmp_path / "m.onnx", "--no-latency", "--quiet", "--json", out)
    assert res.code == 0, res.stderr
    doc = json.loads(out.read_text())["memory"]
    assert (doc["peak_bytes"], doc["best_peak_bytes"], doc["best_order"][:2]) == (x + 2 * wide, x + narrow + wide,
                                                                                  ["b1a", "b1b"])


def test_fp16_bytes_by_data_type(kit, save):
    w = numpy_helper.from_array(np.ones((6, 4, 3, 3), np.float16), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4, name="conv")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 6, 8, 8])], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    p = profile_onnx(save(model))
    assert p.totals.weight_bytes == {"fp16": 216 * 2}
    assert p.memory.peak_bytes == (4 + 6) * 64 * 2
    assert p.layers[0].activation_bytes == 6 * 64 * 2 and p.layers[0].param_bytes == 432


def test_int8_weights_through_dequantize(kit, save):
    """QDQ: an int8 weight, its fp32 scale and int8 zero point; only the int8 tensor is a parameter."""
    wq = numpy_helper.from_array(np.ones((6, 4, 3, 3), np.int8), "wq")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], name="dq"),
             helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4, name="conv")]
    model = kit.make_model(nodes, {"x": [1, 4, 8, 8]}, {"y": [1, 6, 8, 8]}, [wq, scale, zp])
    p = profile_onnx(save(model))
    assert p.totals.weight_bytes == {"int8": 216} and p.totals.weights == 216
    assert p.memory.peak_bytes == B + 6 * 64 * 4  # the dequantized weight is a weight, not an activation
    assert p.memory.timeline_nodes == ("conv",)


def test_mobilenet_weight_bytes_and_peak_closed_form(tmp_path):
    """MobileNet v1 224: parameters are 4 bytes x the file's float constants; the peak is the first
    pointwise Relu: its 64x112x112 input and output, fp32, in any order (the network is a chain)."""
    from effconv.export.onnx import export_onnx
    from effconv.specs import load_spec
    from effconv.zoo import build_model

    spec = load_spec("mobilenet_v1")
    path = export_onnx(build_model(spec), tmp_path / "mb.onnx", spec.input_shape(1))
    m = onnx.load(str(path))
    floats = sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type == TensorProto.FLOAT)
    p = profile_onnx(path)
    assert p.totals.weight_bytes == {"fp32": 4 * floats}
    assert p.memory.peak_bytes == p.memory.best_peak_bytes == 2 * 64 * 112 * 112 * 4 == 6_422_528
    assert p.memory.peak_node.endswith("pw/act/Relu")


def test_budgets_exit_1_and_lower_bound_cannot_pass(kit, save, cli):
    path = save(chain(kit))
    res = cli("profile", path, "--no-latency", "--quiet", "--ram-budget-mb", "0.001")
    assert res.code == 1 and "--ram-budget-mb" in res.stderr
    res = cli("profile", path, "--no-latency", "--quiet", "--flash-budget-mb", "0.00001")
    assert res.code == 1 and "--flash-budget-mb" in res.stderr
    assert cli("profile", path, "--no-latency", "--quiet", "--ram-budget-mb", "1", "--flash-budget-mb", "1").code == 0


def test_memory_plot_and_tables(kit, save, cli, tmp_path):
    png = tmp_path / "mem.png"
    res = cli("profile", save(inception(kit)), "--no-latency", "--memory", "--memory-plot", png)
    assert res.code == 0, res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "live activation memory per layer" in res.stdout and "memory per layer type" in res.stdout
    assert "best order found" in res.stdout
