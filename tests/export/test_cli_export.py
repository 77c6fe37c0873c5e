"""`effconv export` end to end: options, JSON, metadata, and bad input (one line, exit code, no file)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

SMALL = "mobilenet_v1_cifar"  # the cheapest zoo model to export and run


def test_help_has_an_example(cli):
    res = cli("export", "--help")
    assert res.code == 0 and "effconv export resnet20" in res.stdout


def test_export_writes_checked_onnx_json_and_metadata(cli, tmp_path, real_data):
    out, report = tmp_path / "m.onnx", tmp_path / "r.json"
    res = cli("export", SMALL, "-o", out, "--dynamic-batch", "--parity-images", "4", "--json", report, "--seed", "3")
    assert res.code == 0, res.stderr
    assert "parity: passed" in res.stdout and f"wrote {out}" in res.stdout
    data = json.loads(report.read_text())
    assert data["passed"] and data["check"]["opset"] == 17 and data["check"]["inputs"]["input"][0] == "batch"
    sets = data["parity"][0]["sets"]
    assert [s["name"] for s in sets] == (["random", "cifar10-test"] if real_data else ["random"])
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    spec = json.loads(meta["effconv.spec"])
    assert spec["name"] == SMALL and spec["num_classes"] == 10 and meta["effconv.seed"] == "3"
    assert json.loads(meta["effconv.mean"]) == pytest.approx([0.4914, 0.4822, 0.4465])
    assert json.loads(meta["effconv.classes"])[0] == "airplane" and meta["effconv.version"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])  # dynamic batch really works
    assert sess.run(None, {"input": np.zeros((3, 3, 32, 32), np.float32)})[0].shape == (3, 10)


def test_fp16_with_fp16_io(cli, tmp_path):
    out = tmp_path / "h.onnx"
    res = cli("export", SMALL, "-o", out, "--precision", "fp16", "--io-fp16", "--parity-images", "2")
    assert res.code == 0, res.stderr
    graph = onnx.load(str(out)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


def test_parity_failure_exits_1_and_leaves_no_file(cli, tmp_path):
    """fp16 errors (~2e-4 relative) against an fp32-tight tolerance: the check must fail."""
    out, report = tmp_path / "m.onnx", tmp_path / "r.json"
    res = cli("export", SMALL, "-o", out, "--precision", "fp16", "--rtol", "1e-7", "--atol", "0",
              "--parity-images", "2", "--json", report)
    assert res.code == 1
    assert "parity check failed" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "parity: FAILED" in res.stdout
    assert json.loads(report.read_text())["passed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # the model was not written


@pytest.mark.parametrize("args, code, message", [
    (("no_such_spec",), 2, "no_such_spec"),
    (("resnet20", "--precision", "int8", "--calibration-data", "{tmp}"), 3, "no image files"),
    (("resnet20", "--format", "coreml"), 2, "--format 'coreml': unknown format; use one of onnx"),
    (("resnet20", "-o", "{tmp}/missing/m.onnx"), 2, "output folder does not exist"),
    (("resnet20", "-o", "{tmp}/afile/m.onnx"), 2, "output folder does not exist"),
    (("{tmp}/garbage.pt",), 3, "garbage.pt"),
    (("{tmp}/absent.pt",), 2, "absent.pt: no such file or folder"),
    (("{tmp}",), 2, "neither best.pt nor last.pt"),
])
def test_bad_input_is_one_line_and_an_exit_code(cli, tmp_path, args, code, message):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = cli("export", *[a.format(tmp=tmp_path) for a in args])
    assert res.code == code, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no staging left


def test_tensorrt_without_tensorrt_exits_2_with_the_hint(cli, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    res = cli("export", SMALL, "--format", "tensorrt", "-o", tmp_path / "m.engine")
    assert res.code == 2 and "pip install effconv[tensorrt]" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_zero_parity_images_is_not_a_pass(cli, tmp_path):
    """--parity-images 0 used to print an empty table and "parity: passed"."""
    out = tmp_path / "m.onnx"
    res = cli("export", SMALL, "-o", out, "--parity-images", "0")
    assert res.code == 2 and "not checked" in res.stderr and "--no-parity" in res.stderr, res.stderr
    assert not out.exists()
    res = cli("export", SMALL, "-o", out, "--parity-images", "0", "--no-parity")
    assert res.code == 0 and "parity: not checked" in res.stdout and "passed" not in res.stdout, res.stdout


def test_parity_on_zero_images_never_passes():
    from effconv.export.parity import ParityResult, ParitySet

    empty = ParitySet("random", 0, 0.0, 0.0, 0, 1.0)
    assert not ParityResult("ort", "fp32", 1e-3, 1e-4, (empty,)).passed
    assert not ParityResult("ort", "fp32", 1e-3, 1e-4, ()).passed
