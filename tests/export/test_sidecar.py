"""TensorRT engine sidecars: the refusal logic is plain Python and runs without TensorRT."""

from __future__ import annotations

import importlib.util
import json

import pytest

from effconv.errors import InvalidInputError, UsageError
from effconv.export.sidecar import (Sidecar, check_runtime, read_sidecar, sha256_bytes, sidecar_path,
                                    verified_engine_bytes)

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
ENGINE = b"\x00not-really-an-engine\xff" * 10


def _write(tmp_path, data=ENGINE, **overrides):
    engine = tmp_path / "m.engine"
    engine.write_bytes(data)
    fields = dict(tensorrt="10.9.0", gpu="NVIDIA H100", compute_capability="9.0", precision="fp16",
                  flags=("FP16",), engine_sha256=sha256_bytes(ENGINE), onnx="m.onnx", onnx_sha256="0" * 64,
                  effconv="0.1.0")
    fields.update(overrides)
    sidecar_path(engine).write_text(Sidecar(**fields).to_json())
    return engine


def test_matching_sidecar_returns_the_verified_bytes(tmp_path):
    data, side = verified_engine_bytes(_write(tmp_path))
    assert data == ENGINE and side.flags == ("FP16",) and side.gpu == "NVIDIA H100"
    assert sidecar_path(tmp_path / "m.engine").name == "m.engine.json"


def test_sha_mismatch_is_refused(tmp_path):
    engine = _write(tmp_path, data=ENGINE + b"tampered")
    with pytest.raises(InvalidInputError, match="does not match its sidecar") as info:
        verified_engine_bytes(engine)
    assert info.value.exit_code == 3


def test_missing_sidecar_is_refused(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(ENGINE)
    with pytest.raises(InvalidInputError, match="no sidecar m.engine.json"):
        verified_engine_bytes(engine)


@pytest.mark.parametrize("text", ["{not json", json.dumps({"tensorrt": "10"}), json.dumps([1, 2])])
def test_malformed_sidecar_is_refused(tmp_path, text):
    engine = _write(tmp_path)
    sidecar_path(engine).write_text(text)
    with pytest.raises(InvalidInputError, match="malformed sidecar"):
        read_sidecar(engine)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown sidecar format"):
        read_sidecar(_write(tmp_path, format="someone-else/9"))


@pytest.mark.parametrize("version, gpu, match", [("10.9.0", "NVIDIA H100", None),
                                                 ("10.8.0", "NVIDIA H100", "TensorRT 10.9.0"),
                                                 ("10.9.0", "NVIDIA A100", "built on NVIDIA H100")])
def test_runtime_must_match(tmp_path, version, gpu, match):
    side = read_sidecar(_write(tmp_path))
    if match is None:
        check_runtime(side, tensorrt_version=version, gpu=gpu, engine="m.engine")
    else:
        with pytest.raises(InvalidInputError, match=match):
            check_runtime(side, tensorrt_version=version, gpu=gpu, engine="m.engine")


def test_load_engine_checks_the_sidecar_before_importing_tensorrt(tmp_path):
    from effconv.export.tensorrt import load_engine

    engine = _write(tmp_path, data=b"other bytes")
    with pytest.raises(InvalidInputError, match="does not match"):
        load_engine(engine)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_without_tensorrt_the_hint_is_a_usage_error():
    from effconv.export.tensorrt import require_tensorrt

    with pytest.raises(UsageError, match=r"pip install effconv\[tensorrt\]") as info:
        require_tensorrt()
    assert info.value.exit_code == 2
