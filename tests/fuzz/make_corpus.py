"""Write the fuzz seed corpus: small, valid ONNX files covering the ops and features the profiler
reads (Conv in its forms, Gemm/MatMul, If/Loop subgraphs, shape chains, external data).

    python tests/fuzz/make_corpus.py            # rewrites tests/fuzz/corpus/

Deterministic (fixed seed), so rerunning it gives the same bytes; the corpus stays well under 1 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CORPUS = Path(__file__).resolve().parent / "corpus"
OPSET = 17
RNG = np.random.default_rng(0)


def _w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _model(nodes, inputs, outputs, inits=(), *, opset: int = OPSET) -> onnx.ModelProto:
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    graph = helper.make_graph(nodes, "g", [vi(n, s) for n, s in inputs.items()],
                              [vi(n, s) for n, s in outputs.items()],
                              [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def conv_bn_relu_fc() -> onnx.ModelProto:
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], strides=[1, 1], name="conv"),
        n("BatchNormalization", ["c", "s", "bb", "m", "v"], ["bn"], name="bn"),
        n("Relu", ["bn"], ["r"]),
        n("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        n("GlobalAveragePool", ["p"], ["g"]),
        n("Flatten", ["g"], ["f"]),
        n("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    inits = {"w": _w(4, 3, 3, 3), "b": _w(4), "s": _w(4), "bb": _w(4), "m": _w(4), "v": np.abs(_w(4)),
             "fw": _w(5, 4), "fb": _w(5)}
    return _model(nodes, {"x": [1, 3, 8, 8]}, {"y": [1, 5]}, inits)


def depthwise_separable() -> onnx.ModelProto:
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "dw"], ["d"], group=4, pads=[1, 1, 1, 1], name="dw"),
        n("Clip", ["d", "lo", "hi"], ["c"]),
        n("Conv", ["c", "pw"], ["y"], name="pw"),
    ]
    inits = {"dw": _w(4, 1, 3, 3), "pw": _w(8, 4, 1, 1), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    return _model(nodes, {"x": ["N", 4, 6, 6]}, {"y": ["N", 8, 6, 6]}, inits)


def matmul_reshape() -> onnx.ModelProto:
    n = helper.make_node
    nodes = [
        n("Reshape", ["x", "shape"], ["r"]),
        n("MatMul", ["r", "w"], ["m"], name="mm"),
        n("Add", ["m", "b"], ["a"]),
        n("Softmax", ["a"], ["y"], axis=-1),
    ]
    inits = {"shape": np.array([1, 12], np.int64), "w": _w(12, 3), "b": _w(3)}
    return _model(nodes, {"x": [1, 3, 2, 2]}, {"y": [1, 3]}, inits)


def if_and_loop() -> onnx.ModelProto:
    n = helper.make_node
    vi = lambda name, s: helper.make_tensor_value_info(name, TensorProto.FLOAT, s)  # noqa: E731
    then_g = helper.make_graph([n("Relu", ["x"], ["t"])], "then", [], [vi("t", [1, 2])])
    else_g = helper.make_graph([n("Neg", ["x"], ["e"])], "else", [], [vi("e", [1, 2])])
    body = helper.make_graph(
        [n("Identity", ["cond_in"], ["cond_out"]), n("Add", ["acc_in", "x"], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), vi("acc_in", [1, 2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), vi("acc_out", [1, 2])])
    nodes = [
        n("If", ["cond"], ["i_out"], then_branch=then_g, else_branch=else_g),
        n("Loop", ["trip", "cond", "i_out"], ["y"], body=body),
    ]
    graph = helper.make_graph(
        nodes, "g", [vi("x", [1, 2]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [vi("y", [1, 2])], [numpy_helper.from_array(np.array(3, np.int64), "trip")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def shape_chain() -> onnx.ModelProto:
    """Shape -> ConstantOfShape -> Concat -> Pad: the folding path of the profiler."""
    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["s"]),
        n("Gather", ["s", "idx"], ["c"], axis=0),
        n("ConstantOfShape", ["k"], ["zeros"], value=helper.make_tensor("v", TensorProto.INT64, [1], [0])),
        n("Concat", ["zeros", "hw", "zeros", "hw"], ["pads"], axis=0),
        n("Pad", ["x", "pads"], ["p"]),
        n("Conv", ["p", "w"], ["y"], name="conv"),
        n("Unsqueeze", ["c", "ax"], ["cu"]),
    ]
    inits = {"idx": np.array(1, np.int64), "k": np.array([2], np.int64),
             "hw": np.array([1, 1], np.int64), "w": _w(2, 2, 3, 3), "ax": np.array([0], np.int64)}
    return _model(nodes, {"x": [1, 2, 5, 5]}, {"y": [1, 2, 5, 5]}, inits)


def transpose_pool() -> onnx.ModelProto:
    n = helper.make_node
    nodes = [
        n("ConvTranspose", ["x", "w"], ["t"], strides=[2, 2], name="up"),
        n("AveragePool", ["t"], ["a"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["a", "g"], ["y"], group=2, name="grouped"),
        n("Sigmoid", ["y"], ["z"]),
        n("Mul", ["y", "z"], ["out"]),
    ]
    inits = {"w": _w(4, 4, 2, 2), "g": _w(4, 2, 1, 1)}
    return _model(nodes, {"x": [1, 4, 3, 3]}, {"out": [1, 4, 3, 3]}, inits)


def initializer_listed_as_input() -> onnx.ModelProto:
    model = conv_bn_relu_fc()
    w = next(t for t in model.graph.initializer if t.name == "w")
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.dims)))
    return model


def external_weights(folder: Path) -> onnx.ModelProto:
    """conv_bn_relu_fc with `fw` (5x4 float32, 80 bytes) in weights.bin at offset 16."""
    model = conv_bn_relu_fc()
    t = next(t for t in model.graph.initializer if t.name == "fw")
    data = numpy_helper.to_array(t).tobytes()
    (folder / "weights.bin").write_bytes(b"\0" * 16 + data + b"\0" * 16)
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "16"), ("length", str(len(data)))):
        e = t.external_data.add()
        e.key, e.value = key, value
    return model


BUILDERS = {
    "conv_bn_relu_fc": conv_bn_relu_fc, "depthwise_separable": depthwise_separable,
    "matmul_reshape": matmul_reshape, "if_and_loop": if_and_loop, "shape_chain": shape_chain,
    "transpose_pool": transpose_pool, "initializer_listed_as_input": initializer_listed_as_input,
}


def write_corpus(folder: Path = CORPUS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in {**BUILDERS, "external_weights": lambda: external_weights(folder)}.items():
        path = folder / f"{name}.onnx"
        path.write_bytes(build().SerializeToString())
        onnx.checker.check_model(str(path), full_check=True)  # by path: external data resolves beside it
        paths.append(path)
    return paths


if __name__ == "__main__":
    written = write_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} models ({total:,} bytes) to {written[0].parent}")
