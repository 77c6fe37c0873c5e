"""The bad-input matrix for `effconv profile`: each row is an input, the exit code, a fragment of the
one-line message, and (run with --json out.json) the check that no output file is left on failure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 99\n"


def conv_model(batch=1, *, w_as_input=False) -> onnx.ModelProto:
    """x[batch,4,8,8] -> Conv 3x3 (6 out, pads 1) -> y: 1*8*8*6*4*9 = 13,824 Mult-Adds, 216 weights."""
    w = numpy_helper.from_array(np.ones((6, 4, 3, 3), np.float32), "w")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4, 8, 8])]
    if w_as_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [6, 4, 3, 3]))
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4, name="conv")], "g", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 6, 8, 8])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def external(model: onnx.ModelProto, location: str, offset: int = 0, length: int | None = 864) -> onnx.ModelProto:
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location), ("offset", str(offset))] + ([("length", str(length))] if length else [])
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    return model


def nested_if(depth: int) -> onnx.ModelProto:
    m = conv_model()
    leaf = helper.make_graph(list(m.graph.node), "leaf", [], list(m.graph.output))
    inner = leaf
    for i in range(depth):
        node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=leaf)
        inner = helper.make_graph([node], f"l{i}", [], list(m.graph.output))
    m.graph.ClearField("node")
    m.graph.node.extend(inner.node)
    m.graph.input.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    return m


def huge_constant_of_shape() -> onnx.ModelProto:
    m = conv_model()
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [2**31, 2**31])  # 2**62 floats asked for
    m.graph.node.extend([helper.make_node("Constant", [], ["shape"], value=shape),
                         helper.make_node("ConstantOfShape", ["shape"], ["huge"])])
    m.graph.output.append(helper.make_tensor_value_info("huge", TensorProto.FLOAT, [2**31, 2**31]))
    return m


def unsupported_op() -> onnx.ModelProto:
    m = conv_model()
    m.graph.node.append(helper.make_node("FancyConv", ["y"], ["z"], domain="vendor.ops"))
    m.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1]))
    m.opset_import.append(helper.make_opsetid("vendor.ops", 1))
    return m


def symbolic_height() -> onnx.ModelProto:
    """A symbolic batch defaults to 1; a symbolic spatial dim must be set with --input-shape."""
    m = conv_model(batch="N")
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    return m


def _versions(ir=None, opset=None):
    m = conv_model()
    if ir is not None:
        m.ir_version = ir
    if opset is not None:
        m.opset_import[0].version = opset
    return m


def _setup_files(folder: Path) -> None:
    (folder / "w.bin").write_bytes(np.ones(216, np.float32).tobytes())
    (folder / "short.bin").write_bytes(b"\0" * 100)
    outside = folder.parent / "outside.bin"
    outside.write_bytes(np.ones(216, np.float32).tobytes())
    (folder / "link.bin").symlink_to(outside)


CONV = conv_model().SerializeToString()
ROWS = {
    # id: (bytes or model builder, extra args, exit code, message fragment)
    "empty": (b"", [], 3, "is empty"),
    "random": (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), [], 3, "not an ONNX model"),
    "truncated": (CONV[: len(CONV) // 2], [], 3, "not an ONNX model"),
    "lfs-pointer": (LFS, [], 3, "Git LFS pointer"),
    "ext-traversal": (lambda: external(conv_model(), "../outside.bin"), [], 3, "outside the model's folder"),
    "ext-absolute": (lambda: external(conv_model(), "/etc/passwd"), [], 3, "outside the model's folder"),
    "ext-symlink": (lambda: external(conv_model(), "link.bin"), [], 3, "symbolic link"),
    "ext-missing": (lambda: external(conv_model(), "nope.bin"), [], 3, "missing"),
    "ext-short": (lambda: external(conv_model(), "short.bin"), [], 3, "shorter"),
    "ext-offset-past-end": (lambda: external(conv_model(), "w.bin", offset=800), [], 3, "shorter"),
    # The tensor is never materialized: the profile is static and ConstantOfShape costs nothing.
    "constant-of-shape-2**62": (huge_constant_of_shape, [], 0, None),
    "nested-if-30": (lambda: nested_if(30), [], 0, None),
    "ir-too-new": (lambda: _versions(ir=onnx.IR_VERSION + 1), [], 3, "newer than this onnx"),
    "opset-too-new": (lambda: _versions(opset=onnx.defs.onnx_opset_version() + 1), [], 3, "newer than this onnx"),
    "unsupported-strict": (unsupported_op, ["--strict"], 3, "unsupported ops (--strict): vendor.ops.FancyConv x1"),
    "symbolic-no-shape": (symbolic_height, [], 2, "--input-shape"),
    "init-as-input": (lambda: conv_model(w_as_input=True), [], 0, None),
}


@pytest.mark.parametrize("content,args,code,fragment",
                         [r if hasattr(r, "marks") else pytest.param(*r) for r in ROWS.values()], ids=list(ROWS))
def test_profile_bad_input_row(cli, tmp_path, content, args, code, fragment):
    folder = tmp_path / "m"
    folder.mkdir()
    _setup_files(folder)
    data = content if isinstance(content, bytes) else content().SerializeToString()
    path, out = folder / "model.onnx", tmp_path / "out.json"
    path.write_bytes(data)
    res = cli("profile", path, "--no-latency", *args, "--json", out, "--quiet")
    assert res.code == code, (res.code, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    if code == 0:
        assert out.is_file()
        return
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    assert not out.exists(), "a failed profile left its --json file"
    assert not list(tmp_path.glob(".out.json.*")), "a temporary file was left behind"


def test_initializer_listed_as_input_is_counted_once(cli, tmp_path):
    import json

    for name, model in (("plain", conv_model()), ("listed", conv_model(w_as_input=True))):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        assert cli("profile", path, "--no-latency", "--json", tmp_path / f"{name}.json", "--quiet").code == 0
    docs = [json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "listed")]
    for doc in docs:  # closed form: N*H*W*C_out*C_in*K^2 = 1*8*8*6*4*9; weights 6*4*3*3
        assert doc["totals"]["mult_adds"] == 13_824 and doc["totals"]["weights"] == 216
        assert doc["input_shapes"] == {"x": [1, 4, 8, 8]}


def test_over_2gb_external_data_is_profiled_without_reading_it(cli, tmp_path):
    """A 3 GiB sparse weights file (no disk used) and a small .onnx pointing at its end: profiled from
    metadata, with the process's peak memory far below the file's size."""
    import resource

    m = conv_model()
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(3 << 30)
    external(m, "big.bin", offset=(3 << 30) - 864)
    path = tmp_path / "big.onnx"
    path.write_bytes(m.SerializeToString())
    assert big.stat().st_size > 2**31 and big.stat().st_blocks * 512 < 1 << 20  # sparse: no real blocks
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    res = cli("profile", path, "--no-latency", "--json", tmp_path / "p.json", "--quiet")
    assert res.code == 0, res.stderr
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 512 * 1024, f"peak memory grew {grown_kib} KiB: the external data was read"


def test_output_under_a_file_is_a_usage_error(cli, tmp_path):
    """A folder that cannot be written (root ignores chmod, so: a path below a regular file)."""
    path = tmp_path / "m.onnx"
    path.write_bytes(CONV)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = cli("profile", path, "--no-latency", "--json", blocker / "out.json", "--quiet")
    assert res.code == 2 and "output folder does not exist" in res.stderr
    assert "Traceback" not in res.stderr


def test_unwritable_folder_is_a_usage_error(cli, tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    path = tmp_path / "m.onnx"
    path.write_bytes(CONV)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    res = cli("profile", path, "--no-latency", "--json", tmp_path / "out.json", "--quiet")
    assert res.code == 2 and "not writable" in res.stderr
    assert not (tmp_path / "out.json").exists()


def test_full_disk_is_exit_4_and_leaves_nothing(cli, tmp_path, monkeypatch):
    import errno

    from effconv import io as eio

    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = tmp_path / "m.onnx"
    path.write_bytes(CONV)
    monkeypatch.setattr(eio, "_fsync", full)
    res = cli("profile", path, "--no-latency", "--json", tmp_path / "out.json", "--quiet")
    assert res.code == 4 and "disk full" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
