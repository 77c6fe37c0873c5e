"""`effconv deploy` on a tiny hand-built ONNX model: every (backend, precision) cell is in the JSON
(run, or skipped with the reason), the int8 cell is the calibrated QDQ file with the float file's
Mult-Adds, the outputs are written, and a budget no cell meets is exit 1. Timing options are the
shortest the timing loop accepts: these tests check the matrix, not the speed."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

FAST = ("--warmup-ms", "0", "--duration-s", "0.05", "--iterations", "5")
NORM = ("--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25")


def _tiny_model(path, dims=(1, 3, 8, 8)):
    """input [1,3,8,8] (or `dims`, symbolic names allowed) -> Conv 3x3 (4 filters) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (10)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    fc = numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "fc")
    fcb = numpy_helper.from_array(np.zeros(10, np.float32), "fcb")
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], [w, b, fc, fcb])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def tiny(tmp_path):
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return _tiny_model(tmp_path / "tiny.onnx"), images


def _cells(path):
    return {(c["backend"], c["precision"]): c for c in json.loads(path.read_text())["deploy"]["cells"]}


def _onnx_backends():
    from effconv.latency.backends import BACKENDS

    return [n for n, b in BACKENDS.items() if b.kind == "onnx" and b.probe().available]


def test_deploy_fp32_and_int8_on_ort_cpu_writes_every_output(cli, tiny, tmp_path):
    model, images = tiny
    out = {k: tmp_path / f"m.{k}" for k in ("json", "csv", "md", "png")}
    res = cli("deploy", model, "--backend", "ort-cpu", "--precision", "fp32", "--precision", "int8", "--no-accuracy",
              *FAST, *NORM, "--calibration-data", images, "--calibration-images", "16", "--json", out["json"],
              "--csv", out["csv"], "--markdown", out["md"], "--plot", out["png"])
    assert res.code == 0, res.stderr
    cells = _cells(out["json"])
    assert set(cells) == {("ort-cpu", "fp32"), ("ort-cpu", "int8")}
    fp32, int8 = cells["ort-cpu", "fp32"], cells["ort-cpu", "int8"]
    assert fp32["status"] == int8["status"] == "ok"
    assert int8["mult_adds"] == fp32["mult_adds"] == 8 * 8 * 4 * 27 + 40  # conv + fc, closed form
    assert int8["weight_bytes"] < fp32["weight_bytes"] and int8["file"].endswith(".int8.onnx")
    assert all(c["median_ms"] > 0 and c["p99_ms"] >= c["median_ms"] and c["throughput"] > 0 for c in cells.values())
    assert sum(c["best"] for c in cells.values()) == 1  # no accuracy: every cell qualifies, the fastest wins
    doc = json.loads(out["json"].read_text())["deploy"]
    assert set(doc["int8_fp32_latency_ratio"]) == {"ort-cpu"}
    assert len(list(csv.DictReader(out["csv"].read_text().splitlines()))) == 2
    assert "int8 / fp32 median latency" in out["md"].read_text()
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[1/" in res.stdout  # plain progress lines when not a terminal


def test_every_backend_and_precision_is_a_cell(cli, tiny, tmp_path):
    """Every available ONNX backend (openvino too, once registered) x every precision: each cell
    ran or says why not; agreement with the fp32 reference on images calibration did not use."""
    model, images = tiny
    report = tmp_path / "m.json"
    res = cli("deploy", model, *FAST, *NORM, "--calibration-data", images, "--calibration-images", "16",
              "--test-images", "8", "--json", report)
    assert res.code == 0, res.stderr
    cells = _cells(report)
    backends = _onnx_backends()
    assert set(cells) == {(b, p) for b in backends for p in ("fp32", "fp16", "bf16", "int8")}
    assert all(c["status"] == "ok" or c["reason"] for c in cells.values())
    ref = cells[backends[0], "fp32"]
    assert ref["status"] == "ok" and ref["agreement"] == 1.0 and ref["drop_points"] == 0.0
    assert cells["ort-cpu", "int8"]["agreement"] is not None
    assert json.loads(report.read_text())["deploy"]["images"] == 8


def test_openvino_cells_when_installed(cli, tiny, tmp_path):
    from effconv.latency.backends import BACKENDS

    if "openvino" not in BACKENDS or not BACKENDS["openvino"].probe().available:
        pytest.skip("the openvino backend is not registered or not installed here")
    model, images = tiny
    report = tmp_path / "m.json"
    res = cli("deploy", model, "--backend", "openvino", "--precision", "fp32", "--precision", "int8", *FAST, *NORM,
              "--calibration-data", images, "--calibration-images", "16", "--no-accuracy", "--json", report)
    assert res.code == 0, res.stderr
    cells = _cells(report)
    assert cells["openvino", "fp32"]["status"] == cells["openvino", "int8"]["status"] == "ok"


def test_a_budget_no_cell_meets_is_exit_1(cli, tiny, tmp_path):
    model, images = tiny
    report = tmp_path / "m.json"
    res = cli("deploy", model, "--backend", "ort-cpu", "--precision", "fp32", "--no-accuracy", *FAST, *NORM,
              "--budget-ms", "0.000001", "--json", report)
    assert res.code == 1, res.stderr
    assert "no cell within" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert json.loads(report.read_text())["deploy"]["best"] is None


def test_int8_without_calibration_images_is_a_skipped_cell(cli, tiny, tmp_path, monkeypatch):
    monkeypatch.setattr("effconv.export.calibration.default_cifar", lambda: None)
    model, _ = tiny
    report = tmp_path / "m.json"
    res = cli("deploy", model, "--backend", "ort-cpu", "--precision", "fp32", "--precision", "int8", "--no-accuracy",
              *FAST, *NORM, "--json", report)
    assert res.code == 0, res.stderr
    cell = _cells(report)["ort-cpu", "int8"]
    assert cell["status"] == "skipped" and "calibration images" in cell["reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "m.json", "tiny.onnx"]


def test_input_shape_sets_the_symbolic_dims_every_cell_is_timed_at(cli, tmp_path):
    """A file declaring 1x3xHxW times at the --input-shape given (it would be skipped otherwise), fp32
    and the int8 file made from it; the timed profile counts the 8x8 Conv: 4*27*64 + 4*10 Mult-Adds."""
    from PIL import Image

    model = _tiny_model(tmp_path / "dyn.onnx", (1, 3, "h", "w"))
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(8):
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(images / f"{i}.png")
    out = tmp_path / "d.json"
    res = cli("deploy", model, "--backend", "ort-cpu", "--precision", "fp32", "--precision", "int8", "--no-accuracy",
              *FAST, *NORM, "--calibration-data", images, "--calibration-images", "8",
              "--input-shape", "input=1x3x8x8", "--json", out)
    assert res.code == 0, res.stderr
    cells = _cells(out)
    for precision in ("fp32", "int8"):
        cell = cells[("ort-cpu", precision)]
        assert cell["status"] == "ok", cell
        assert cell["mult_adds"] == 4 * 27 * 64 + 4 * 10


@pytest.mark.parametrize("shape, words", [("image=1x3x8x8", "unknown input(s) image"),
                                          ("input=1x3x8", "has rank 4"),
                                          ("input=2x3x8x8", "contradicts the model")])
def test_a_bad_input_shape_is_one_line_before_any_work(cli, tmp_path, shape, words):
    model = _tiny_model(tmp_path / "dyn.onnx", (1, 3, "h", "w"))
    work = tmp_path / "work"
    res = cli("deploy", model, "--backend", "ort-cpu", "--precision", "fp32", "--no-accuracy", *FAST, *NORM,
              "--input-shape", shape, "--work-dir", work, "--json", tmp_path / "d.json")
    assert res.code == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not work.exists() and not (tmp_path / "d.json").exists()


def test_input_shape_on_a_run_is_refused_not_ignored(cli, tmp_path):
    res = cli("deploy", "resnet20", "--input-shape", "input=1x3x64x64", "--no-accuracy", *FAST)
    assert res.code == 2 and "applies to ONNX-file sources" in res.stderr, res.stderr
