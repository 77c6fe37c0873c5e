"""Export tests read real CIFAR-10 through the decoded cache the training tests fill (one decode per
session), and fall back to random parity inputs when the data is absent. `onnx_kit` writes small ONNX
files by hand (a float conv net, and its Q/DQ copies made by ONNX Runtime's quantizer)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

CIFAR_JPG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpg.tar.xz"


@pytest.fixture
def real_data(request, monkeypatch, tmp_path_factory) -> bool:
    """Point effconv's default data search at the shared archive and the session's decoded cache;
    False (and no real images) when the archive is absent."""
    if not CIFAR_JPG.is_file():
        monkeypatch.setenv("EFFCONV_DATA", str(CIFAR_JPG))  # absent: the search then finds nothing here
        return False
    request.getfixturevalue("cifar10")  # decodes once per session into the pytest cache
    store = getattr(request.config, "cache", None)  # None with -p no:cacheprovider: decode again
    cache = store.mkdir("effconv-cifar10") if store is not None else tmp_path_factory.getbasetemp() / "export-cache"
    monkeypatch.setenv("EFFCONV_DATA", str(CIFAR_JPG))
    monkeypatch.setenv("EFFCONV_CACHE", str(cache))
    return True


def tiny_model(path: Path, dims=("N", 3, "H", "W"), meta: bool = True) -> Path:
    """A small float conv net (Conv, Relu, GlobalAveragePool, Flatten, MatMul -> 10 logits) with input
    `dims` (symbolic by default), and effconv's mean/std metadata unless `meta` is False."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal((4, 10)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [dims[0], 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if meta:
        helper.set_model_props(model, {"effconv.mean": "[0.5, 0.5, 0.5]", "effconv.std": "[0.25, 0.25, 0.25]"})
    onnx.save(model, str(path))
    return path


def tiny_qdq(path: Path, *, symmetric: bool) -> Path:
    """`path`: a Q/DQ copy of tiny_model (8x8 images) made by ONNX Runtime's quantizer: int8 symmetric
    activations (as TensorRT takes them) or uint8 asymmetric ones (as effconv's int8 ONNX)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    src = tiny_model(path.with_name(path.stem + ".float-src.onnx"), dims=("N", 3, 8, 8))
    images = np.random.default_rng(1).standard_normal((8, 3, 8, 8)).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": images[:4]}, {"input": images[4:]}])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(src), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True})
    src.unlink()
    return path


@pytest.fixture(scope="session")
def onnx_kit():
    return SimpleNamespace(model=tiny_model, qdq=tiny_qdq)
