"""--input-shape on `effconv latency` (effconv.latency.shapes): symbolic dims set, static dims never
contradicted, and every refusal one line with exit 2 before anything is timed."""

from __future__ import annotations

import importlib.util
import json

import pytest

from effconv.errors import UsageError
from effconv.latency.shapes import concrete_shape, resolve_input_shapes, timed_batch

CPU = ("--backend", "ort-cpu")
FAST = ("--threads", "1", "--warmup-ms", "5", "--duration-s", "0.02", "--iterations", "3")


@pytest.fixture(scope="module")
def symbolic_onnx(tmp_path_factory):
    """The tiny conv net with a symbolic batch, height and width (N x 3 x H x W)."""
    import torch
    import torch.nn as nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    path = tmp_path_factory.mktemp("symbolic") / "symbolic.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 16, 16), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}}, opset_version=17, dynamo=False)
    return path


def test_concrete_shape_policy():
    assert concrete_shape("x", ("N", 3, 32, 32), 4) == (4, 3, 32, 32)  # a symbolic batch takes --batch
    assert concrete_shape("x", ("N", 3, "H", "W"), 2, (2, 3, 40, 48)) == (2, 3, 40, 48)
    assert concrete_shape("x", (-1, 3, None, 0), 1, (1, 3, 8, 8)) == (1, 3, 8, 8)  # -1 / None / 0: symbolic
    with pytest.raises(UsageError, match=r"contradicts the model, which declares Nx3x32x32 \(dim 1 is 3\)"):
        concrete_shape("x", ("N", 3, 32, 32), 1, (1, 4, 32, 32))
    with pytest.raises(UsageError, match=r"dim 0 is 1"):  # a static batch cannot be changed either
        concrete_shape("x", (1, 3, 32, 32), 8, (8, 3, 32, 32))
    with pytest.raises(UsageError, match="has rank 4"):
        concrete_shape("x", ("N", 3, 32, 32), 1, (1, 3, 32))
    with pytest.raises(UsageError, match=r"--input-shape x=1x3xNxN"):
        concrete_shape("x", ("N", 3, "H", "W"), 1)
    with pytest.raises(UsageError, match="fixed batch of 1"):
        concrete_shape("x", (1, 3, 32, 32), 2)


def test_timed_batch():
    assert timed_batch(None, None) == 1 and timed_batch(3, None) == 3
    assert timed_batch(None, (("x", (6, 3, 8, 8)),)) == 6 and timed_batch(6, (("x", (6, 3, 8, 8)),)) == 6
    with pytest.raises(UsageError, match="sets batch 6, but --batch is 2"):
        timed_batch(2, (("x", (6, 3, 8, 8)),))


def test_resolve_reads_the_file(symbolic_onnx):
    assert resolve_input_shapes(symbolic_onnx, 1, (("input", (1, 3, 20, 24)),)) == (("input", (1, 3, 20, 24)),)
    with pytest.raises(UsageError, match="unknown input"):
        resolve_input_shapes(symbolic_onnx, 1, (("nope", (1, 3, 8, 8)),))


def _conv_macs(path):
    doc = json.loads(path.read_text())["latency"]
    return doc, {t["type"]: t["mult_adds"] for t in doc["by_type"]}


needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="openvino is not installed (pip install 'effconv[openvino]')")


@pytest.mark.parametrize("backend, isolate", [("ort-cpu", "--isolate"), ("ort-cpu", "--no-isolate"),
                                              pytest.param("openvino", "--isolate", marks=needs_openvino)])
def test_symbolic_dims_run_at_the_given_shape(cli, symbolic_onnx, tmp_path, backend, isolate):
    """Oracle: the per-type Mult-Adds of the 3x3 conv scale with H x W (its MACs are
    N*8*H*W*3*9), the batch is the shape's first dim, and the runtime ran that shape (its
    per-layer counters cover the conv)."""
    out_a, out_b = tmp_path / "a.json", tmp_path / "b.json"
    args = (*FAST, "--backend", backend, isolate)
    a = cli("latency", symbolic_onnx, *args, "--input-shape", "input=2x3x16x16", "--json", out_a, "-q")
    b = cli("latency", symbolic_onnx, *args, "--input-shape", "input=2x3x20x24", "--json", out_b, "-q")
    assert a.code == 0 and b.code == 0, (a.stderr, b.stderr)
    doc, macs_a = _conv_macs(out_a)
    _, macs_b = _conv_macs(out_b)
    assert doc["batch"] == 2 and doc["backend"] == backend
    assert macs_a["Conv 3x3"] == 2 * 8 * 16 * 16 * 3 * 9
    assert macs_b["Conv 3x3"] == 2 * 8 * 20 * 24 * 3 * 9


@pytest.mark.parametrize("shape, needle", [
    (None, "set them with --input-shape input=1x3xNxN"),
    ("input=1x4x16x16", "contradicts the model, which declares Nx3xHxW (dim 1 is 3)"),
    ("input=1x3x16", "has rank 4"),
    ("other=1x3x16x16", "unknown input(s) other"),
    ("input=1x3x0x16", "each dimension must be between 1"),
])
def test_bad_shapes_are_one_line_exit_2_before_timing(cli, monkeypatch, symbolic_onnx, shape, needle):
    import effconv.latency.measure as measure

    def never(*args, **kwargs):
        raise AssertionError("the timing run started")

    monkeypatch.setattr(measure, "time_runner", never)
    extra = ("--input-shape", shape) if shape else ()
    res = cli("latency", symbolic_onnx, *CPU, *FAST, "--no-isolate", *extra)
    assert res.code == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_static_dim_cannot_be_contradicted_in_the_child(cli, tiny_onnx):
    res = cli("latency", tiny_onnx, *CPU, *FAST, "--input-shape", "input=1x3x32x32")  # tiny_onnx is 1x3x16x16
    assert res.code == 2 and "contradicts the model" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_batch_and_input_shape_must_agree(cli, symbolic_onnx):
    res = cli("latency", symbolic_onnx, *CPU, *FAST, "--batch", "2", "--input-shape", "input=4x3x16x16")
    assert res.code == 2 and "sets batch 4, but --batch is 2" in res.stderr, res.stderr
