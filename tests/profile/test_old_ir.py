"""Old ONNX files (IR 3, opset 9): initializers listed as graph inputs, weights made at run time by
ConstantOfShape or a Constant node in a weight slot. They are profiled, not refused, and those
tensors are weights.

Oracles: closed-form Mult-Adds for the hand-built graphs; for onnx's own shipped "light" models
(onnx/backend/test/data/light: AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet,
SqueezeNet, VGG-19, ZFNet-512, all IR 3 with ConstantOfShape weights) an independent counter written
here: ONNX Runtime runs the model with every activation exposed as an output (optimizations off), so
every shape is the real one, and Conv/ConvTranspose/Gemm/MatMul/Einsum Mult-Adds follow in closed
form from those shapes. Weights: the elements of every tensor in a Conv/ConvTranspose/Gemm/MatMul
weight slot that is constant (an initializer, a Constant, or a ConstantOfShape of a constant shape),
also when only reshaped on its way there (Reshape, Transpose, Flatten, ...).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effconv.profile import profile_onnx

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = sorted(LIGHT.glob("*.onnx")) if LIGHT.is_dir() else []
WEIGHT_SLOTS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (0, 1), "MatMul": (0, 1)}


def _ir3(nodes, inputs, outputs, inits):
    """IR 3 / opset 9 model: every initializer is also a graph input (IR < 4 requires it)."""
    vi_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()]
    vi_in += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    vi_out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()]
    m = helper.make_model(helper.make_graph(nodes, "old", vi_in, vi_out, inits),
                          opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 3
    onnx.checker.check_model(m)
    return m


def _f32(name, *shape):
    return numpy_helper.from_array(np.random.default_rng(0).standard_normal(shape).astype(np.float32), name)


def _i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def old_cnn():
    """Conv (initializer weight) -> Conv (ConstantOfShape weight) -> Flatten -> Gemm (Constant weight)."""
    w2 = helper.make_tensor("one", TensorProto.FLOAT, [1], [0.01])
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("ConstantOfShape", ["w2_shape"], ["w2"], name="make_w2", value=w2),
        helper.make_node("Conv", ["r1", "w2"], ["h2"], name="conv2", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Flatten", ["h2"], ["f"], name="flatten", axis=1),
        helper.make_node("Constant", [], ["w3"], name="make_w3",
                         value=numpy_helper.from_array(np.ones((16 * 3 * 3, 10), np.float32))),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc"),
    ]
    inits = [_f32("w1", 8, 3, 3, 3), _f32("b1", 8), _i64("w2_shape", [16, 8, 3, 3]), _f32("b3", 10)]
    model = _ir3(nodes, {"x": [1, 3, 8, 8]}, {"y": [1, 10]}, inits)
    mult_adds = (8 * 8 * 8) * (3 * 9) + (16 * 3 * 3) * (8 * 9) + 10 * 144  # conv1 + conv2 + fc
    weights = 8 * 27 + 16 * 72 + 144 * 10
    return model, mult_adds, weights


def old_matmul_constant():
    """MatMul whose weight is a Constant node, then a Gemm with transB whose weight is ConstantOfShape."""
    nodes = [
        helper.make_node("Constant", [], ["wm"], value=numpy_helper.from_array(np.ones((12, 20), np.float32))),
        helper.make_node("MatMul", ["x", "wm"], ["h"], name="mm"),
        helper.make_node("ConstantOfShape", ["wg_shape"], ["wg"], name="make_wg",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Gemm", ["h", "wg", "bg"], ["y"], name="fc", transB=1),  # C required at opset 9
    ]
    model = _ir3(nodes, {"x": [4, 12]}, {"y": [4, 6]}, [_i64("wg_shape", [6, 20]), _f32("bg", 6)])
    return model, 4 * 20 * 12 + 4 * 6 * 20, 12 * 20 + 6 * 20


HAND_BUILT = {"cnn": old_cnn, "matmul_constant": old_matmul_constant}


@pytest.mark.parametrize("name", list(HAND_BUILT))
def test_hand_built_ir3(tmp_path, name):
    model, mult_adds, weights = HAND_BUILT[name]()
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    prof = profile_onnx(path)
    assert prof.totals.mult_adds == mult_adds, prof.unsupported
    assert prof.totals.weights == weights
    assert prof.complete is True, prof.uncounted
    assert list(prof.input_shapes) == ["x"]  # initializers listed as inputs are not inputs to set
    profile_onnx(path, strict=True)


def test_hand_built_ir3_layer_types(tmp_path):
    model, _, _ = old_cnn()
    path = tmp_path / "cnn.onnx"
    onnx.save(model, str(path))
    types = {lc.name: lc.type for lc in profile_onnx(path).layers}
    assert (types["conv1"], types["conv2"], types["fc"]) == ("Conv 3x3", "Conv 3x3", "Fully Connected")


# The independent counter ---------------------------------------------------------------------------
def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _einsum_mult_adds(equation: str, shapes) -> int:
    lhs = equation.replace(" ", "").split("->")[0].split(",")
    sizes = {}
    for term, shape in zip(lhs, shapes):
        letters = term.replace("...", "")
        ell = len(shape) - len(letters)
        for ch, d in zip(term.replace("...", "E" * ell if ell else ""), shape):
            sizes.setdefault(ch, d)
    return math.prod(sizes.values())


RESHAPING = ("Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Cast")


def _constant_root(name: str, producers) -> str:
    """The stored tensor behind `name` through ops that only reshape their data input (Inception v1's
    classifier weight is Reshape(ConstantOfShape(...)) before its Gemm)."""
    while name in producers and producers[name].op_type in RESHAPING:
        name = producers[name].input[0]
    return name


def reference_counts(path: Path) -> tuple[int, int]:
    """(Mult-Adds, weights) of `path` from the real shapes ONNX Runtime computes."""
    import onnxruntime as ort

    m = onnx.load(str(path))
    consts = {t.name: tuple(t.dims) for t in m.graph.initializer}
    init_values = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for node in m.graph.node:  # weights made by the graph itself: shapes without running
        if node.op_type == "Constant":
            consts[node.output[0]] = tuple(_attr(node, "value", None).dims)
        elif node.op_type == "ConstantOfShape" and node.input[0] in init_values:
            consts[node.output[0]] = tuple(int(d) for d in init_values[node.input[0]])
    wanted = [o for n in m.graph.node for o in n.output if o and o not in consts]
    listed = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=o) for o in wanted if o not in listed)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.random.default_rng(0).standard_normal(i.shape).astype(np.float32)
             for i in sess.get_inputs() if i.name not in consts}
    shapes = dict(consts)
    names = [o.name for o in sess.get_outputs()]
    shapes.update(zip(names, (tuple(v.shape) for v in sess.run(names, feeds))))
    shapes.update({k: v.shape for k, v in feeds.items()})
    producers = {o: n for n in m.graph.node for o in n.output}
    mult_adds, weights, seen = 0, 0, set()
    for node in m.graph.node:
        ins = [shapes.get(i) for i in node.input]
        if node.op_type == "Conv":
            mult_adds += math.prod(shapes[node.output[0]]) * math.prod(ins[1][1:])
        elif node.op_type == "ConvTranspose":
            mult_adds += math.prod(ins[0]) * math.prod(ins[1][1:])
        elif node.op_type == "Gemm":
            a, b = ins[0], ins[1]
            k = a[0] if _attr(node, "transA", 0) else a[1]
            mult_adds += math.prod(shapes[node.output[0]]) * k
        elif node.op_type == "MatMul":
            mult_adds += math.prod(shapes[node.output[0]]) * ins[0][-1]
        elif node.op_type == "Einsum":
            mult_adds += _einsum_mult_adds(_attr(node, "equation", b"").decode(), ins)
        for i in WEIGHT_SLOTS.get(node.op_type, ()):
            root = _constant_root(node.input[i], producers) if i < len(node.input) else ""
            if root in consts and root not in seen:
                seen.add(root)
                weights += math.prod(consts[root])
    return mult_adds, weights


@pytest.mark.parametrize("name", list(HAND_BUILT))
def test_reference_counter_agrees_with_closed_form(tmp_path, name):
    """The counter used on the light models, checked on graphs whose answer is known."""
    model, mult_adds, weights = HAND_BUILT[name]()
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    assert reference_counts(path) == (mult_adds, weights)


@pytest.mark.skipif(not LIGHT_MODELS, reason=f"onnx ships no light models here ({LIGHT})")
@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: re.sub(r"^light_|\.onnx$", "", p.name))
def test_onnx_light_models(path):
    mult_adds, weights = reference_counts(path)
    assert mult_adds > 0 and weights > 0
    prof = profile_onnx(path)
    assert prof.totals.mult_adds == mult_adds, prof.unsupported
    assert prof.totals.weights == weights
    assert prof.complete is True, prof.uncounted
    assert prof.unsupported == {}
    profile_onnx(path, strict=True)  # every op of these models is known: --strict passes
