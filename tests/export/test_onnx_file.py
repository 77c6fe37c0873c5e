"""Any ONNX file as an export source (effconv.export.onnx_file), for TensorRT engines here.

TensorRT and a GPU are absent where these run, so the engine path is tested up to the library:
- without TensorRT, one line and exit 2 before anything is read (a file of junk bytes gets the same
  answer) and no file is left;
- with a recording stand-in for the `tensorrt` module, every argument check runs and fails before
  TensorRT is touched (the stand-in records each name asked of it); a valid call reaches the
  build, and the calls it makes (the parsed file, the profile, the flags) and the files it leaves
  (engine, sidecar with the source's sha256; nothing when the build or parity fails) are checked.
The stand-in answers only what effconv asks; it says nothing about TensorRT itself: the real
builds are tests/export/test_tensorrt.py's (marked, skipped here).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


class FakeTensorRT:
    """Enough of the `tensorrt` module for effconv's build_engine and load_engine; every name asked
    of it is recorded in `touched`, every call in `calls`."""

    def __init__(self, *, build_ok: bool = True) -> None:
        self.touched: list[str] = []
        self.calls: list[tuple] = []
        rec = self.calls

        class Network:
            def __init__(self):
                self.inp = None

            def get_input(self, i):
                return self.inp

        class Parser:
            def __init__(self, network, logger):
                self.network, self.num_errors = network, 0

            def parse_from_file(self, path):
                import onnx

                rec.append(("parse", path))
                inp = onnx.load(path, load_external_data=False).graph.input[0]
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim)
                self.network.inp = SimpleNamespace(name=inp.name, shape=dims)  # TensorRT: -1 is dynamic
                return True

        class Profile:
            def set_shape(self, name, lo, opt, hi):
                rec.append(("profile", name, tuple(lo), tuple(opt), tuple(hi)))

        class Config:
            int8_calibrator = None

            def set_memory_pool_limit(self, pool, size):
                rec.append(("workspace", size))

            def set_flag(self, flag):
                rec.append(("flag", flag))

            def add_optimization_profile(self, profile):
                rec.append(("add_profile",))

            def set_calibration_profile(self, profile):
                rec.append(("calibration_profile",))

            def create_timing_cache(self, blob):
                return SimpleNamespace(serialize=lambda: b"cache")

            def set_timing_cache(self, cache, ignore_mismatch):
                pass

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                rec.append(("build", config.int8_calibrator is not None))
                return b"fake engine bytes" if build_ok else None

        class Calibrator:
            def __init__(self):
                pass

        self._ns = SimpleNamespace(
            __version__="10.99-fake", Logger=SimpleNamespace(WARNING=2, __call__=None), Builder=Builder,
            OnnxParser=Parser, MemoryPoolType=SimpleNamespace(WORKSPACE="workspace"),
            BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8"), IInt8EntropyCalibrator2=Calibrator,
            Runtime=lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda data: SimpleNamespace(data=data)),
        )
        self._ns.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})

    def __getattr__(self, name):
        if name.startswith("_") and name != "__version__":
            raise AttributeError(name)
        self.touched.append(name)
        return getattr(self._ns, name)


@pytest.fixture
def fake_trt(monkeypatch):
    from effconv.export import tensorrt

    fake = FakeTensorRT()
    monkeypatch.setattr(tensorrt, "require_tensorrt", lambda: fake)
    monkeypatch.setattr(tensorrt, "_gpu", lambda: ("Fake GPU", "9.0"))
    return fake


def _files(folder):
    return sorted(p.name for p in folder.rglob("*"))


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here")
@pytest.mark.parametrize("extra", [(), ("--precision", "int8", "--calibration-data", "{tmp}"),
                                   ("--input-shape", "bogus=1x2")])
def test_without_tensorrt_one_line_exit_2_before_anything_is_read(cli, tmp_path, extra):
    src = tmp_path / "junk.onnx"
    src.write_bytes(b"\x00not an onnx file")  # never opened: the missing library is said first
    extra = [a.format(tmp=tmp_path) for a in extra]
    res = cli("export", src, "--format", "tensorrt", "-o", tmp_path / "m.engine", *extra)
    assert res.code == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        "effconv: error: TensorRT is not installed: pip install effconv[tensorrt] (needs an NVIDIA GPU and driver)"]
    assert _files(tmp_path) == ["junk.onnx"]


@pytest.mark.parametrize("case, args, code, message", [
    ("symbolic", (), 2, "input 'input' has shape ?x3x?x?: give --input-shape input=Nx3xDxD"),
    ("rank", ("--input-shape", "input=1x3x32"), 2, "has 3 dimensions; input 'input' has 4"),
    ("fixed", ("--input-shape", "input=1x3x32x32"), 2, "does not match the fixed shape 1x3x8x8"),
    ("name", ("--input-shape", "images=1x3x32x32"), 2, "--input-shape names 'images'; the model's input is 'input'"),
    ("suffix", ("-o", "{tmp}/engine.onnx", "--input-shape", "input=1x3x32x32"), 2, "-o names the engine"),
    ("no-norm", ("--precision", "int8", "--input-shape", "input=1x3x32x32"), 2, "give --mean and --std"),
    ("no-images", ("--precision", "int8", "--input-shape", "input=1x3x32x32"), 2, "needs calibration images"),
    ("junk", (), 3, "not a readable ONNX file"),
    ("uint8-qdq", ("--precision", "int8"), 3, "quantizes as uint8; TensorRT runs int8 Q/DQ with zero point 0 only"),
    ("int8-qdq", ("--precision", "fp16"), 2, "the file is quantized (int8 Q/DQ nodes): build it with --precision int8"),
    ("two-inputs", (), 3, "one float32 input"),
    ("external", ("--input-shape", "input=1x3x32x32"), 3, "lies outside the model's folder"),
])
def test_bad_input_is_one_line_before_tensorrt_is_touched(cli, onnx_kit, tmp_path, fake_trt, monkeypatch, case,
                                                         args, code, message):
    import onnx

    monkeypatch.setattr("effconv.export.calibration.default_cifar", lambda: None)
    src = tmp_path / "m.onnx"
    if case == "fixed":
        onnx_kit.model(src, dims=(1, 3, 8, 8))
    elif case == "junk":
        src.write_bytes(b"\x00junk")
    elif case in ("uint8-qdq", "int8-qdq"):
        onnx_kit.qdq(src, symmetric=case == "int8-qdq")
    else:
        onnx_kit.model(src, meta=case != "no-norm")
    if case == "two-inputs":
        model = onnx.load(str(src))
        model.graph.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1]))
        onnx.save(model, str(src))
    if case == "external":
        _weights_outside(src)
    before = _files(tmp_path)
    out = ("-o", tmp_path / "m.engine") if "-o" not in args else ()
    res = cli("export", src, "--format", "tensorrt", *out, *[str(a).format(tmp=tmp_path) for a in args])
    assert res.code == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert _files(tmp_path) == before
    assert fake_trt.touched == [] and fake_trt.calls == []


def test_a_valid_call_builds_with_the_profile_and_writes_engine_and_sidecar(cli, onnx_kit, tmp_path, fake_trt):
    src = onnx_kit.model(tmp_path / "m.onnx")
    out = tmp_path / "engines" / "m.engine"
    out.parent.mkdir()
    res = cli("export", src, "--format", "tensorrt", "--precision", "fp16", "-o", out,
              "--input-shape", "input=4x3x32x32", "--no-parity", "--json", tmp_path / "r.json")
    assert res.code == 0, res.stderr
    assert ("parse", str(src)) in fake_trt.calls
    assert ("profile", "input", (1, 3, 32, 32), (4, 3, 32, 32), (256, 3, 32, 32)) in fake_trt.calls
    assert ("flag", "FP16") in fake_trt.calls and ("flag", "INT8") not in fake_trt.calls
    assert _files(out.parent) == ["m.engine", "m.engine.json"]
    assert out.read_bytes() == b"fake engine bytes"
    side = json.loads((out.parent / "m.engine.json").read_text())
    assert side["onnx"] == "m.onnx" and side["onnx_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert side["engine_sha256"] == hashlib.sha256(b"fake engine bytes").hexdigest() and side["flags"] == ["FP16"]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["passed"] and doc["engine"] == str(out) and doc["onnx"] == str(src) and doc["parity"] == []


def test_an_int8_q_dq_file_builds_with_its_own_scales(cli, onnx_kit, tmp_path, fake_trt):
    src = tmp_path / "q.onnx"
    onnx_kit.qdq(src, symmetric=True)
    res = cli("export", src, "--format", "tensorrt", "--precision", "int8", "-o", tmp_path / "q.engine", "--no-parity")
    assert res.code == 0, res.stderr
    assert ("flag", "INT8") in fake_trt.calls and ("build", False) in fake_trt.calls  # no calibrator
    assert ("calibration_profile",) not in fake_trt.calls
    assert ("profile", "input", (1, 3, 8, 8), (1, 3, 8, 8), (256, 3, 8, 8)) in fake_trt.calls


def test_a_failed_build_is_exit_5_and_leaves_nothing(cli, onnx_kit, tmp_path, monkeypatch):
    from effconv.export import tensorrt

    fake = FakeTensorRT(build_ok=False)
    monkeypatch.setattr(tensorrt, "require_tensorrt", lambda: fake)
    monkeypatch.setattr(tensorrt, "_gpu", lambda: ("Fake GPU", "9.0"))
    src = onnx_kit.model(tmp_path / "m.onnx", dims=(1, 3, 8, 8))
    res = cli("export", src, "--format", "tensorrt", "-o", tmp_path / "m.engine", "--no-parity")
    assert res.code == 5 and "TensorRT could not build an engine" in res.stderr, res.stderr
    assert _files(tmp_path) == ["m.onnx"]


@pytest.mark.parametrize("scale, code", [(1.0, 0), (1.5, 1)])
def test_parity_compares_the_engine_with_onnx_runtime_on_the_file(cli, onnx_kit, tmp_path, fake_trt, monkeypatch,
                                                                  scale, code):
    """The "engine" here runs the file on ONNX Runtime (times `scale`): identical outputs pass, a
    50% error fails with exit 1 and no file. The sidecar check of load_engine runs for real."""
    from effconv.export import tensorrt
    from effconv.export.parity import ort_runner

    src = onnx_kit.model(tmp_path / "m.onnx")
    run, _ = ort_runner(src)
    monkeypatch.setattr(tensorrt, "engine_runner", lambda engine: (lambda x: run(x) * scale, "tensorrt fake"))
    res = cli("export", src, "--format", "tensorrt", "-o", tmp_path / "m.engine", "--input-shape", "input=2x3x16x16",
              "--parity-images", "6", "--json", tmp_path / "r.json")
    assert res.code == code, res.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    (parity,) = doc["parity"]
    assert parity["reference"].startswith("onnxruntime") and parity["runtime"] == "tensorrt fake"
    assert parity["sets"][0]["images"] == 6 and parity["passed"] is (code == 0)
    expected = ["m.engine", "m.engine.json", "m.onnx", "r.json"] if code == 0 else ["m.onnx", "r.json"]
    assert _files(tmp_path) == expected
    if code == 0:
        assert "Parity vs onnxruntime" in res.stdout


def test_a_zoo_export_keeps_its_dynamic_batch_profile(tmp_path, fake_trt):
    """The run/spec path through the same profile code: 1 / 1 / 256, as before."""
    from effconv.export.api import ExportOptions, export_model

    result = export_model("resnet20", tmp_path / "r.engine", ExportOptions(format="tensorrt", dynamic_batch=True,
                                                                           parity=False))
    assert [p.name for p in result.files] == ["r.onnx", "r.engine", "r.engine.json"]
    assert ("profile", "input", (1, 3, 32, 32), (1, 3, 32, 32), (256, 3, 32, 32)) in fake_trt.calls


def test_int8_from_a_float_file_calibrates_on_the_given_images(cli, onnx_kit, tmp_path, fake_trt):
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(images / f"{i}.png")
    src = onnx_kit.model(tmp_path / "m.onnx")
    res = cli("export", src, "--format", "tensorrt", "--precision", "int8", "-o", tmp_path / "m.engine",
              "--input-shape", "input=1x3x16x16", "--calibration-data", images, "--calibration-images", "4",
              "--no-parity")
    assert res.code == 0, res.stderr
    assert ("build", True) in fake_trt.calls and ("calibration_profile",) in fake_trt.calls  # a calibrator, profiled
    assert [c for c in fake_trt.calls if c[0] == "flag"] == [("flag", "FP16"), ("flag", "INT8")]


def _weights_outside(path):
    """Point the file's first initializer at external data above its folder (never to be read)."""
    import onnx

    model = onnx.load(str(path))
    init = model.graph.initializer[0]
    init.ClearField("raw_data")
    del init.float_data[:]
    init.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../outside.bin"), ("offset", "0"), ("length", "4")):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("command", [("export", "--precision", "int8", "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2",
                                      "-o", "{tmp}/q.onnx", "--input-shape", "input=1x3x32x32"),
                                     ("deploy", "--no-accuracy", "--work-dir", "{tmp}/work")])
def test_external_data_outside_the_folder_is_refused_before_any_work(cli, onnx_kit, tmp_path, command):
    """The int8 export and the deployment matrix read a plain ONNX file later (calibration, every
    cell): its external data is checked first, exit 3, and nothing is written."""
    src = _weights_outside(onnx_kit.model(tmp_path / "m.onnx"))
    before = _files(tmp_path)
    verb, *rest = command
    res = cli(verb, src, *[a.format(tmp=tmp_path) for a in rest])
    assert res.code == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "external data '../outside.bin'" in lines[0], res.stderr
    assert _files(tmp_path) == before
