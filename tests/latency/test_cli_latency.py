"""`effconv latency`, `effconv backends`, `effconv device`: exit codes and outputs."""

from __future__ import annotations

import json

import pytest

from effconv.latency.roofline import load_device_profile

FAST = ("--backend", "ort-cpu", "--threads", "2", "--warmup-ms", "10", "--duration-s", "0.05", "--iterations", "5")


@pytest.mark.parametrize("budget, code", [("0.000001", 1), ("100000", 0)])
def test_budget_exit_codes(cli, tiny_onnx, budget, code):
    res = cli("latency", str(tiny_onnx), *FAST, "--per-layer", "none", "--budget-ms", budget)
    assert res.code == code, res.stderr
    if code == 1:
        assert "exceeds the budget" in res.stderr


def test_json_and_roofline(cli, tiny_onnx, tmp_path):
    out = tmp_path / "lat.json"
    plot = tmp_path / "lat.png"
    res = cli("latency", str(tiny_onnx), *FAST, "--device-profile", "h100-sxm", "--json", out, "--plot", plot)
    assert res.code == 0, res.stderr
    doc = json.loads(out.read_text())["latency"]
    assert doc["backend"] == "ort-cpu" and doc["statistics"]["median_ms"] > 0
    assert doc["per_layer"]["method"] == "ort-profiler" and doc["per_layer"]["sum_ratio"] > 0
    assert doc["environment"]["intra_op_threads"] == 2
    conv = next(t for t in doc["by_type"] if t["type"] == "Conv 3x3")
    assert conv["bound"] in ("memory", "compute") and conv["pct_of_roofline"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backends_json(cli):
    res = cli("backends", "--json")
    assert res.code == 0
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"ort-cpu", "ort-cuda", "ort-tensorrt", "tensorrt", "torch-cpu", "torch-cuda", "openvino"}
    assert rows["openvino"]["per_layer"] == "openvino-profiler" and rows["openvino"]["extra"] == "openvino"
    assert rows["ort-cpu"]["available"] is True
    assert {n for n, r in rows.items() if "throughput" in r["modes"]} == {"ort-cpu", "openvino"}
    assert all(r["available"] or r["reason"] for r in rows.values())


def test_device_calibrate_writes_a_loadable_profile(cli, tmp_path):
    out = tmp_path / "me.toml"
    res = cli("device", "calibrate", "--out", out, "--name", "me", "--matmul-n", "128", "--copy-mib", "4")
    assert res.code == 0, res.stderr
    p = load_device_profile(out)
    assert p.measured and p.peak("fp32") > 1e6 and p.memory_bandwidth > 1e6


def test_unknown_backend_and_fp16_on_cpu_are_usage_errors(cli, tiny_onnx):
    assert cli("latency", str(tiny_onnx), "--backend", "nope").code == 2
    assert cli("latency", str(tiny_onnx), "--backend", "ort-cpu", "--precision", "fp16").code == 2


def test_torch_cpu_backend_on_a_zoo_spec(cli, tmp_path):
    spec = tmp_path / "mbv1_small.toml"  # the CIFAR MobileNet at width 0.25: fast on 2 cores
    spec.write_text('name = "mbv1_small"\nfamily = "mobilenet"\ndescription = "test"\ninput_size = 32\n'
                    'num_classes = 10\n[arch]\nconfig = "cifar"\nalpha = 0.25\n')
    res = cli("latency", str(spec), "--backend", "torch-cpu", "--threads", "2", "--warmup-ms", "10",
              "--duration-s", "0.05", "--iterations", "3", "--per-layer", "torch-profiler", "--json", tmp_path / "t.json")
    assert res.code == 0, res.stderr
    doc = json.loads((tmp_path / "t.json").read_text())["latency"]
    assert doc["per_layer"]["method"] == "torch-profiler"
    assert {"Conv 3x3", "Conv DW 3x3", "Conv 1x1", "Fully Connected"} <= {t["type"] for t in doc["by_type"]}


@pytest.mark.parametrize("extra, code, needle", [
    (["--backend", "ort-cpu", "--per-layer", "torch-profiler"], 2, "--per-layer torch-profiler cannot time --backend ort-cpu"),
    (["--per-layer", "bogus"], 2, "--per-layer 'bogus'"),
    (["--device-profile", "nosuch"], 2, "--device-profile 'nosuch'"),
    (["--device-profile", "{bad_toml}"], 3, "bad.toml"),
    (["--duration-s", "nan"], 2, "--duration-s nan"),
    (["--budget-ms", "-5"], 2, "--budget-ms -5"),
])
def test_options_are_checked_before_timing(cli, monkeypatch, tmp_path, extra, code, needle):
    """These used to fail after the whole timing run (or time as if nothing were wrong)."""
    import effconv.latency.api as report

    def never(*args, **kwargs):
        raise AssertionError("the timing run started")

    monkeypatch.setattr(report, "measure_model", never)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n")
    res = cli("latency", "resnet20", *(a.format(bad_toml=bad) for a in extra))
    assert res.code == code and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_fp16_on_a_cpu_backend_is_refused_by_the_options():
    """LatencyOptions is built by the CLI before any model is loaded (it used to fail in the runner)."""
    from effconv.errors import UsageError
    from effconv.latency.base import LatencyOptions

    with pytest.raises(UsageError, match="--precision fp16 needs a CUDA backend"):
        LatencyOptions(backend="ort-cpu", precision="fp16")
    with pytest.raises(UsageError, match="--precision fp16 needs a CUDA backend"):
        LatencyOptions(backend="torch-cpu", precision="fp16")
