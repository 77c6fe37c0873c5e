"""Bad input: one line on stderr, the documented exit code (3 invalid input, 2 usage), no traceback."""

from __future__ import annotations

import os

import onnx
import pytest
from onnx import TensorProto, helper


def _one_line(res, code: int, *needles: str) -> None:
    assert res.code == code, (res.code, res.stderr, res.stdout)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"just some text\nnot a model\n", "not an ONNX model"),
        (os.urandom(4096), "not an ONNX model"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1234\n", "Git LFS pointer"),
        (b"", "empty"),
    ],
    ids=["text", "random-bytes", "lfs-pointer", "empty"],
)
def test_not_onnx(cli, tmp_path, content, needle):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    _one_line(cli("profile", path), 3, str(path), needle)


def test_truncated_protobuf(cli, save, conv_model, tmp_path):
    data = conv_model.SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    _one_line(cli("profile", path, "--batch", "1"), 3, "not an ONNX model")


def test_missing_file_and_directory(cli, tmp_path):
    _one_line(cli("profile", tmp_path / "nope.onnx"), 3, "no such file")
    _one_line(cli("profile", tmp_path), 3, "directory")


@pytest.mark.parametrize("field", ["ir", "opset"])
def test_newer_than_installed_onnx(cli, save, conv_model, field):
    if field == "ir":
        conv_model.ir_version = onnx.IR_VERSION + 1
    else:
        conv_model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    _one_line(cli("profile", save(conv_model), "--batch", "1"), 3, "newer than this onnx")


def test_symbolic_dims_exit_2_and_are_listed(cli, save, kit):
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")
    model = kit.make_model([node], {"x": ["N", 4, "H", 8]}, {"y": ["N", 6, "H", 8]}, {"w": kit.weights(6, 4, 3, 3)})
    _one_line(cli("profile", save(model)), 2, "x[2]=H", "--input-shape", "--batch")


def test_symbolic_batch_defaults_to_1_and_says_so(cli, save, conv_model):
    """A model exported with a dynamic batch profiles as the help says: batch 1, with a note."""
    res = cli("profile", save(conv_model), "--no-layers", "--no-latency")
    assert res.code == 0, res.stderr
    assert f"{8 * 8 * 6 * 4 * 9:,}" in res.stdout and "symbolic batch" in res.stdout


def test_input_shape_cannot_contradict_a_static_dim(cli, save, conv_model):
    """x is [N, 4, 8, 8]: 3 channels is refused before counting (exit 2, naming the dim)."""
    _one_line(cli("profile", save(conv_model), "--input-shape", "x=1x3x8x8"), 2, "dim 1 is 3", "4x8x8")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--input-shape", "x=1xAx8x8"], "expected NAME=DxDx"),
        (["--input-shape", "nope=1x4x8x8"], "inputs are: x"),
        (["--input-shape", "x=1x4x8"], "rank 4"),
        (["--batch", "1", "--convention", "bogus"], "paper, all"),
    ],
)
def test_usage_errors(cli, save, conv_model, args, needle):
    _one_line(cli("profile", save(conv_model), *args), 2, needle)


@pytest.mark.parametrize("args", [["--input-shape", "x=2x4x8x8"], ["--batch", "2"]])
def test_setting_the_dims_works(cli, save, conv_model, args):
    res = cli("profile", save(conv_model), *args, "--no-layers", "--no-latency")
    assert res.code == 0, res.stderr
    assert f"{2 * 8 * 8 * 6 * 4 * 9:,}" in res.stdout  # N*H*W*C_out*C_in*K^2, pads 1 keep 8x8


def _external(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    """Point the weight `w` at external data `location` (offset 0, its real length)."""
    t = next(t for t in model.graph.initializer if t.name == "w")
    n = len(t.float_data) * 4 or len(t.raw_data)
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(n))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return model


def test_external_data_inside_folder_is_profiled(cli, save, conv_model, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 6 * 4 * 9 * 4)
    res = cli("profile", save(_external(conv_model, "weights.bin")), "--batch", "1", "--no-layers", "--no-latency")
    assert res.code == 0, res.stderr
    assert "weights 216" in res.stdout


@pytest.mark.parametrize(
    "location,needle",
    [
        ("/etc/passwd", "outside the model's folder"),
        ("../secret.bin", "outside the model's folder"),
        ("link.bin", "symbolic link"),
        ("missing.bin", "missing"),
        ("short.bin", "shorter"),
    ],
)
def test_unsafe_or_missing_external_data(cli, save, conv_model, tmp_path, location, needle):
    (tmp_path.parent / "secret.bin").write_bytes(b"\0" * 1024)
    (tmp_path / "link.bin").symlink_to(tmp_path.parent / "secret.bin")
    (tmp_path / "short.bin").write_bytes(b"\0" * 8)
    res = cli("profile", save(_external(conv_model, location)), "--batch", "1", "--no-latency")
    _one_line(res, 3, needle)


def test_constant_range_of_1e8_is_not_materialized(cli, save):
    """ONNX's data propagation would compute a constant Range of 10^8 elements in full (25 s, out of
    memory); effconv infers without it and folds nothing that large: a profile in well under 2 s."""
    import time

    def const(name, v):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", TensorProto.INT64, [], [v]))

    nodes = [const("s", 0), const("e", 10**8), const("d", 1), helper.make_node("Range", ["s", "e", "d"], ["r"]),
             helper.make_node("Relu", ["x"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
                           helper.make_tensor_value_info("r", TensorProto.INT64, ["n"])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    t0 = time.perf_counter()
    res = cli("profile", save(m), "--no-latency", "--no-isolate")
    assert res.code == 0, res.stderr
    assert time.perf_counter() - t0 < 5


def test_ceil_mode_pool_with_the_runtime_shape_declared_is_accepted(cli, save, kit):
    """MaxPool 2x2/2, ceil_mode=1, end pads 1 on 4x4 (opset 17): runtimes drop the third window,
    which starts in the end padding, and make 2x2, which the file declares. ONNX's pre-22 inference
    says 3x3; a file that is right is not refused, and the Conv below is counted on 2x2."""
    pool = helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
                            ceil_mode=1, name="pool")
    conv = helper.make_node("Conv", ["p", "w"], ["y"], name="conv")
    m = kit.make_model([pool, conv], {"x": [1, 4, 4, 4]}, {"y": [1, 6, 2, 2]}, {"w": kit.weights(6, 4, 1, 1)})
    m.graph.value_info.append(helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 4, 2, 2]))
    assert kit.ort_shapes(m, {"x": (1, 4, 4, 4)}) == [(1, 6, 2, 2)]  # the runtime's answer
    res = cli("profile", save(m), "--no-latency", "--no-layers", "--strict")
    assert res.code == 0, res.stderr
    assert f"Mult-Adds {2 * 2 * 6 * 4:,} " in res.stdout
