"""The bad-input matrix beyond ONNX: malicious pickles as checkpoints (a canary file proves nothing
ran), foreign or tampered TensorRT engines (sidecar check, no TensorRT needed), kill -9 in the middle
of a checkpoint write, a full disk while saving, and the external-data checks of effconv.sandbox.safety."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from effconv.sandbox import safety
from effconv.training.pickle_scan import refuse_code_in_pickle
from effconv.errors import InvalidInputError, ResourceLimitError


class Canary:
    """Unpickling this would create the canary file: the proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _evil_files(tmp_path):
    import torch

    canary = tmp_path / "canary"
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"format": "effconv-checkpoint/1", "x": Canary(str(canary))}))
    zipped = tmp_path / "zip.pt"
    torch.save({"format": "effconv-checkpoint/1", "model": {}, "x": Canary(str(canary))}, zipped)
    return canary, {"raw-pickle": raw, "torch-zip": zipped}


@pytest.mark.parametrize("kind", ["raw-pickle", "torch-zip"])
def test_malicious_pickle_is_refused_by_export_and_loader(cli, tmp_path, kind):
    from effconv.training import checkpoint

    canary, files = _evil_files(tmp_path)
    path = files[kind]
    res = cli("export", path, "-o", tmp_path / "m.onnx", "--json", tmp_path / "r.json", "--quiet")
    assert res.code == 3, res.stderr
    assert "Traceback" not in res.stderr and str(path) in res.stderr
    with pytest.raises(InvalidInputError):
        checkpoint.load_checkpoint(path)
    with pytest.raises(InvalidInputError, match="would import (posix|os).system"):
        refuse_code_in_pickle(path)
    assert not canary.exists(), "unpickling ran code"
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "r.json").exists()


def test_pickle_scan_accepts_a_real_checkpoint(tmp_path):
    import torch

    from effconv.training import checkpoint

    path = checkpoint.save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.ones(3)}, "rng": checkpoint.capture_rng(),
                                                              "step": 3, "spec": {"a": [1, 2.0, None]}})
    refuse_code_in_pickle(path)  # no exception: tensors and plain values only
    assert checkpoint.load_checkpoint(path)["step"] == 3


def _engine(tmp_path, data=b"serialized-engine-bytes"):
    from effconv.export.sidecar import Sidecar, sha256_bytes, sidecar_path

    engine = tmp_path / "m.engine"
    engine.write_bytes(data)
    side = Sidecar(tensorrt="10.3.0", gpu="NVIDIA H100", compute_capability="9.0", precision="fp16", flags=("FP16",),
                   engine_sha256=sha256_bytes(data), onnx="m.onnx", onnx_sha256="0" * 64, effconv="0")
    sidecar_path(engine).write_text(side.to_json())
    return engine


@pytest.mark.parametrize("case,fragment", [
    ("no-sidecar", "no sidecar"), ("tampered", "does not match its sidecar"), ("malformed", "malformed sidecar"),
    ("other-format", "unknown sidecar format"), ("other-tensorrt", "TensorRT 10.3.0, this is 10.0.1"),
    ("other-gpu", "built on NVIDIA H100"),
])
def test_foreign_or_tampered_engine_is_refused(tmp_path, case, fragment):
    from effconv.export.sidecar import check_runtime, sidecar_path, verified_engine_bytes

    engine = _engine(tmp_path)
    side = sidecar_path(engine)
    if case == "no-sidecar":
        side.unlink()
    elif case == "tampered":
        engine.write_bytes(b"serialized-engine-bytes + injected")
    elif case == "malformed":
        side.write_text("{not json")
    elif case == "other-format":
        side.write_text(json.dumps({**json.loads(side.read_text()), "format": "someone-else/1"}))
    with pytest.raises(InvalidInputError, match=fragment) as info:
        data, sc = verified_engine_bytes(engine)
        assert data == engine.read_bytes()  # the bytes checked are the bytes returned
        version, gpu = ("10.0.1", "NVIDIA H100") if case == "other-tensorrt" else ("10.3.0", "NVIDIA A100")
        check_runtime(sc, tensorrt_version=version, gpu=gpu, engine=engine)
    assert info.value.exit_code == 3


_WRITER = r"""
import sys, time, torch
from effconv.training import checkpoint as ck
def slow(path, data):
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2]); fh.flush()
        print("HALF", flush=True); time.sleep(60)
ck._write = slow
ck.save_checkpoint(sys.argv[1], {"step": 2, "model": {"w": torch.zeros(100_000)}})
"""


def test_kill_9_during_checkpoint_write_keeps_the_previous_one(tmp_path):
    import torch

    from effconv.training import checkpoint

    last = tmp_path / "last.pt"
    checkpoint.save_checkpoint(last, {"step": 1, "model": {"w": torch.ones(100_000)}})
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(last)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HALF"  # the new file is half written
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    payload = checkpoint.load_checkpoint(last)
    assert payload["step"] == 1 and float(payload["model"]["w"].sum()) == 100_000
    assert [p.name for p in tmp_path.glob(".last.pt.*")], "the half-written temporary file should be beside it"
    checkpoint.save_checkpoint(last, {"step": 3, "model": {"w": torch.ones(10)}})  # the next save cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_stale_temporary_cleanup_touches_only_its_own_pattern(tmp_path):
    from effconv.training import checkpoint

    names = [".last.pt.ab_c12z9.pt", ".last.pt.toolong123.pt", ".last.pt.ab_c12z9.tmp", ".best.pt.ab_c12z9.pt",
             "last.pt.ab_c12z9.pt", ".last.pt.AB_C12Z9.pt"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    removed = checkpoint.remove_stale_temporaries(tmp_path / "last.pt")
    assert [p.name for p in removed] == [".last.pt.ab_c12z9.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


def test_full_disk_during_checkpoint_write(tmp_path, monkeypatch):
    import torch

    from effconv.training import checkpoint

    last = tmp_path / "last.pt"
    checkpoint.save_checkpoint(last, {"step": 1, "model": {"w": torch.ones(10)}})

    def full(path, data):
        with open(path, "wb") as fh:
            fh.write(bytes(data)[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "_write", full)
    with pytest.raises(ResourceLimitError, match="disk full") as info:
        checkpoint.save_checkpoint(last, {"step": 2, "model": {"w": torch.zeros(10)}})
    assert info.value.exit_code == 4
    assert checkpoint.load_checkpoint(last)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def _ext_model(location="w.bin", offset="0", length="24", dims=(2, 3)):
    import onnx
    from onnx import TensorProto, helper

    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, v
    g = helper.make_graph([], "g", [], [], [t])
    return onnx.helper.make_model(g)


@pytest.mark.parametrize("kw,fragment", [
    ({}, None),
    ({"length": None}, None),  # length from dims x 4 bytes
    ({"offset": "8"}, None),
    ({"offset": "9"}, "past the end"),
    ({"offset": "-1"}, "not a non-negative integer"),
    ({"offset": "1e3"}, "not a non-negative integer"),
    ({"length": "20"}, "the tensor needs 24"),
    ({"location": "../w.bin"}, "outside the model's folder"),
    ({"location": "sub/../../w.bin"}, "outside"),
    ({"location": "/etc/passwd"}, "outside"),
    ({"location": ""}, "outside"),
    ({"location": "link.bin"}, "symbolic link"),
    ({"location": "dir/w.bin"}, "symbolic link"),
    ({"location": "none.bin"}, "missing"),
    ({"location": "."}, "not a regular file"),
])
def test_external_data_checks(tmp_path, kw, fragment):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"\0" * 32)  # 24 bytes needed: offsets 0..8 fit
    (tmp_path / "w.bin").write_bytes(b"\0" * 32)
    (folder / "link.bin").symlink_to(tmp_path / "w.bin")
    (folder / "dir").symlink_to(tmp_path)
    model = _ext_model(**kw)
    if fragment is None:
        (ref,) = safety.check_external_data(model, folder / "m.onnx")
        assert ref.length == 24 and ref.file == folder / "w.bin"
    else:
        with pytest.raises(InvalidInputError, match=fragment):
            safety.check_external_data(model, folder / "m.onnx")


def test_lfs_pointer_detection(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3\n")
    with pytest.raises(InvalidInputError, match="Git LFS pointer"):
        safety.refuse_lfs_pointer(p)
    p.write_bytes(b"PK\x03\x04 real content")
    safety.refuse_lfs_pointer(p)


@pytest.mark.parametrize("extra", [["--lr", "0.1"], ["resnet20"], ["--optimizer", "sgd"]])
def test_resume_with_a_different_config_is_refused(cli, tmp_path, extra):
    res = cli("train", "--resume", tmp_path, *extra)
    assert res.code == 2 and "--resume continues a run as configured" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
