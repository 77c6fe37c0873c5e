"""TensorRT engines: built, checked against PyTorch, loaded back through the sidecar, and refused
when tampered with. Needs TensorRT and a CUDA GPU; skipped (with the reason) elsewhere."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not installed"),
]


@pytest.fixture(autouse=True)
def _cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")


@pytest.mark.parametrize("precision, dynamic", [("fp32", False), ("fp16", True)])
def test_engine_builds_matches_and_loads(tmp_path, precision, dynamic):
    from effconv.export.api import ExportOptions, export_model
    from effconv.export.sidecar import read_sidecar, sha256_file
    from effconv.export.tensorrt import load_engine

    cache = tmp_path / "timing.cache"
    out = tmp_path / "m.engine"
    result = export_model("resnet20", out, ExportOptions(format="tensorrt", precision=precision,
                                                         dynamic_batch=dynamic, timing_cache=cache))
    assert result.engine_path == out and cache.is_file()
    assert [p.name for p in result.files] == ["m.onnx", "m.engine", "m.engine.json"]
    onnx_parity, trt_parity = result.parity
    assert onnx_parity.passed and trt_parity.passed and trt_parity.runtime.startswith("tensorrt")
    side = read_sidecar(out)
    assert side.engine_sha256 == sha256_file(out) and side.onnx_sha256 == sha256_file(tmp_path / "m.onnx")
    assert ("FP16" in side.flags) is (precision == "fp16")
    assert load_engine(out).num_io_tensors == 2


def test_int8_engine_calibrates_on_cifar(tmp_path, real_data):
    from effconv.export.api import ExportOptions, export_model

    if not real_data:
        pytest.skip("int8 calibration needs the real CIFAR-10 archive")
    result = export_model("resnet20", tmp_path / "q.engine", ExportOptions(format="tensorrt", precision="int8"))
    assert result.parity[-1].precision == "int8"


def test_tampered_engine_is_refused(tmp_path):
    from effconv.errors import InvalidInputError
    from effconv.export.api import ExportOptions, export_model
    from effconv.export.tensorrt import load_engine

    out = tmp_path / "m.engine"
    export_model("resnet20", out, ExportOptions(format="tensorrt", parity=False))
    out.write_bytes(out.read_bytes() + b"\x00")
    with pytest.raises(InvalidInputError, match="does not match"):
        load_engine(out)


def test_engine_from_a_plain_onnx_file(tmp_path):
    """`effconv export m.onnx --format tensorrt` (as trtexec --onnx): a dynamic-batch file, built for
    batch 4, checked against ONNX Runtime on the same file."""
    from effconv.export.api import ExportOptions, export_model
    from effconv.export.sidecar import read_sidecar, sha256_file
    from effconv.export.tensorrt import load_engine

    src = tmp_path / "r20.onnx"
    export_model("resnet20", src, ExportOptions(dynamic_batch=True, parity=False))
    out = tmp_path / "engines" / "r20.engine"
    out.parent.mkdir()
    result = export_model(src, out, ExportOptions(format="tensorrt", precision="fp16", input_shape=(4, 3, 32, 32),
                                                  input_name="input"))
    assert [p.name for p in result.files] == ["r20.engine", "r20.engine.json"]
    (parity,) = result.parity
    assert parity.passed and parity.reference.startswith("onnxruntime")
    assert read_sidecar(out).onnx_sha256 == sha256_file(src)
    engine = load_engine(out)
    assert tuple(engine.get_tensor_profile_shape("input", 0)[1]) == (4, 3, 32, 32)  # min, opt, max: opt
