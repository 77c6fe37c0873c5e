"""int8 ONNX export (effconv.export.int8): a QDQ file calibrated on real images, checked for accuracy.

Oracles: the float file it came from (same Mult-Adds and weight count in effconv's profile; the
same arg-max on real test images within the tolerance) and the ONNX checker. Bad input leaves no
file behind and is one line with the documented exit code.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from effconv.export.api import ExportOptions, export_model


@pytest.fixture(scope="module")
def trained_run(cifar10, tmp_path_factory):
    """A run directory as `effconv train` writes it: MobileNet (CIFAR) at width 0.25, a few steps on
    256 real training images (depthwise convolutions: the case per-channel weights are for)."""
    from effconv.specs import load_spec
    from effconv.training.api import TrainConfig, train
    from effconv.zoo import with_arch

    spec = with_arch(load_spec("mobilenet_v1_cifar"), alpha=0.25)
    config = TrainConfig(steps=4, batch_size=32, subset=128, eval_every=4, eval_subset=32, log_every=4)
    return train(spec, config, data=cifar10, out=tmp_path_factory.mktemp("run") / "run", quiet=True).run_dir


@pytest.fixture(scope="module")
def float_file(tmp_path_factory):
    """A fresh ResNet-20 as an fp32 ONNX file with effconv's metadata (no torch in the int8 step)."""
    out = tmp_path_factory.mktemp("float") / "r20.onnx"
    export_model("resnet20", out, ExportOptions(parity=False))
    return out


def test_int8_of_a_trained_run_is_qdq_and_keeps_accuracy(trained_run, real_data, tmp_path):
    from effconv.profile import profile_onnx

    out = tmp_path / "m.int8.onnx"
    result = export_model(trained_run, out, ExportOptions(precision="int8", calibration_images=64,
                                                          parity_images=300, max_accuracy_drop=3.0))
    check = result.int8
    print(f"int8 check: {check.to_dict()}")  # pytest -rP shows the measured figures
    assert check.passed and check.labelled and check.images == 300 and check.calibration_images == 64
    assert abs(check.drop_points) <= 3.0 and check.top1_agreement >= 0.8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx"]  # the staged fp32 file stays behind
    import onnx

    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > ops["QuantizeLinear"]  # + weights
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    # Every input of every Conv, the BN-folded bias included, comes from a DequantizeLinear: the
    # pattern ORT fuses into QLinearConv (a float bias left the convolutions in float).
    assert convs and all(producer.get(i) == "DequantizeLinear" for n in convs for i in n.input), \
        [(n.name, [producer.get(i) for i in n.input]) for n in convs if any(producer.get(i) != "DequantizeLinear" for i in n.input)]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["effconv.precision"] == "int8"
    quant = json.loads(meta["effconv.quantization"])
    assert quant["format"] == "QDQ" and quant["calibration_images"] == 64
    fp32 = tmp_path / "m.onnx"
    export_model(trained_run, fp32, ExportOptions(parity=False))
    q, f = profile_onnx(out).totals, profile_onnx(fp32).totals
    assert q.mult_adds == f.mult_adds and q.weights == f.weights
    assert set(q.weight_bytes) >= {"int8"} and q.weight_bytes["int8"] == f.weights  # one byte per weight


def test_int8_from_a_plain_onnx_file_with_an_image_folder(float_file, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = tmp_path / "imgs"
    (images / "sub").mkdir(parents=True)
    for i in range(24):  # any size: resized to the model's 32x32
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / "sub" / f"{i}.png")
    out = tmp_path / "q.onnx"
    result = export_model(float_file, out, ExportOptions(precision="int8", calibration_data=images,
                                                         calibration_images=16, max_accuracy_drop=100))
    assert out.is_file() and result.int8.calibration_images == 16
    assert not result.int8.labelled and result.int8.images == 8  # the 8 images calibration did not use


@pytest.mark.parametrize("case, code, message", [
    ("empty-folder", 3, "no image files"),
    ("nothing-reachable", 2, "needs calibration images"),
    ("no-normalization", 2, "give --mean and --std"),
    ("bad-mean", 2, "--mean 'a,b'"),
    ("mean-length", 2, "--mean needs 3 values"),
    ("fp16-from-onnx", 2, "--precision int8 --format onnx only"),
])
def test_int8_bad_input_is_one_line_and_leaves_nothing(cli, float_file, tmp_path, monkeypatch, case, code, message):
    import onnx

    monkeypatch.setattr("effconv.export.calibration.default_cifar", lambda: None)
    (tmp_path / "empty").mkdir()
    source, extra = str(float_file), []
    if case == "empty-folder":
        extra = ["--calibration-data", str(tmp_path / "empty")]
    elif case == "no-normalization":
        model = onnx.load(str(float_file))
        del model.metadata_props[:]
        source = str(tmp_path / "bare.onnx")
        onnx.save(model, source)
    elif case == "bad-mean":
        extra = ["--mean", "a,b", "--std", "1,1,1"]
    elif case == "mean-length":
        extra = ["--mean", "0.5,0.5", "--std", "1,1,1", "--calibration-data", str(tmp_path / "empty")]
    precision = "fp16" if case == "fp16-from-onnx" else "int8"
    before = sorted(p.name for p in tmp_path.iterdir())
    res = cli("export", source, "--precision", precision, "-o", tmp_path / "q.onnx", *extra)
    assert res.code == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file, no staging folder


def test_int8_check_failure_is_exit_1_and_writes_nothing(float_file, tmp_path, cli, real_data):
    """A zero tolerance with labels-free images that disagree: exit 1, the report, no model file."""
    if not real_data:
        pytest.skip("the accuracy check needs the real CIFAR-10 archive")
    report = tmp_path / "r.json"
    res = cli("export", float_file, "--precision", "int8", "-o", tmp_path / "q.onnx", "--calibration-images", "8",
              "--parity-images", "400", "--max-accuracy-drop", "0", "--json", report)
    doc = json.loads(report.read_text())
    if res.code == 0:  # a fresh model can quantize without a single flipped answer: nothing to fail
        assert doc["int8_check"]["drop_points"] <= 0
        return
    assert res.code == 1 and "int8 check failed" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert doc["passed"] is False and doc["int8_check"]["passed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
