"""`effconv profile FILE.onnx` parses the model in a limited child process by default: the profile
is the same as in-process, a native crash there is exit 5 and a limit exit 4, each one line, and the
CLI process lives on."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from effconv.sandbox import parent as sandbox
from effconv.profile import profile_onnx

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


@pytest.mark.parametrize("name,kw", [("depthwise_separable.onnx", {"batch": 2}),
                                     ("shape_chain.onnx", {"convention": "all"})])
def test_isolated_profile_equals_the_in_process_one(name, kw):
    """Oracle: the same function in this process; every field survives the JSON round trip."""
    path = CORPUS / name
    got = sandbox.profile_onnx_isolated(path, limits=sandbox.Limits(2048, 60), **kw)
    assert got == profile_onnx(path, **kw)
    assert got.totals.mult_adds > 0


def test_cli_parses_in_a_child_by_default(cli, tmp_path, monkeypatch):
    """The parser is sabotaged in the parent process only: by default the profile still works (it
    runs in another process, forked or spawned); with --no-isolate the sabotage is hit."""
    import os

    import effconv.profile.graph as prof
    from effconv.errors import InvalidInputError

    parent, real = os.getpid(), prof.load_graph

    def sabotaged(path, **kw):
        if os.getpid() == parent:
            raise InvalidInputError("parsed in the parent", path=path)
        return real(path, **kw)

    monkeypatch.setattr(prof, "load_graph", sabotaged)
    model = CORPUS / "conv_bn_relu_fc.onnx"
    res = cli("profile", model, "--no-latency", "--quiet", "--json", tmp_path / "p.json")
    assert res.code == 0, res.stderr
    assert (tmp_path / "p.json").is_file()
    res = cli("profile", model, "--no-latency", "--quiet", "--no-isolate")
    assert res.code == 3 and "parsed in the parent" in res.stderr


def test_native_crash_in_the_child_is_exit_5_through_the_cli(cli, tmp_path, monkeypatch):
    """A sitecustomize on PYTHONPATH (read by new interpreters only: the spawned child, not this
    process) aborts the child when it imports onnx, as a crashing native parser would."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import os, sys
        class _AbortOnOnnx:
            def find_spec(self, name, path=None, target=None):
                if name == "onnx":
                    os.write(2, b"native parser: assertion failed\\n")
                    os.abort()
        sys.meta_path.insert(0, _AbortOnOnnx())
    """))
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("EFFCONV_SPAWN", "1")  # a fresh interpreter even where a fork would do
    out = tmp_path / "p.json"
    res = cli("profile", CORPUS / "conv_bn_relu_fc.onnx", "--no-latency", "--quiet", "--json", out)
    assert res.code == 5, res.stderr
    assert "SIGABRT" in res.stderr and "assertion failed" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def _huge_pads_model(path: Path) -> Path:
    """Pads from ConstantOfShape([N * (2**56 + 2)]), N read from the input's shape: ONNX's data
    propagation asks for more memory than exists (found by the 10,000-input fuzz run, seed 0, input
    1324: then a MemoryError, exit 5, in-process). With a constant size instead, effconv infers without
    data propagation and never asks (tests/profile/test_bad_input.py); a size computed from shapes
    still reaches it, and the child's memory limit turns that into exit 4."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array([2**56 + 2], np.int64), "k"),
             numpy_helper.from_array(np.array([1, 1], np.int64), "hw"),
             numpy_helper.from_array(np.array([0], np.int64), "i0"),
             numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")]
    nodes = [helper.make_node("Shape", ["x"], ["sx"]), helper.make_node("Gather", ["sx", "i0"], ["n"]),
             helper.make_node("Mul", ["n", "k"], ["kk"]),
             helper.make_node("ConstantOfShape", ["kk"], ["z"], value=helper.make_tensor("v", TensorProto.INT64, [1], [0])),
             helper.make_node("Concat", ["z", "hw", "z", "hw"], ["pads"], axis=0),
             helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Conv", ["p", "w"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 5, 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("args,fragment", [
    (["--mem-limit-mb", "768"], "out of memory while checking and inferring shapes (std::bad_alloc)"),
    (["--timeout-s", "0.001"], "timed out after 0.001 s"),
])
def test_limits_are_exit_4_through_the_cli(cli, tmp_path, args, fragment):
    """The message names the step (effconv.profile.graph's ResourceLimitError, rebuilt from the child)."""
    model = _huge_pads_model(tmp_path / "huge.onnx")
    res = cli("profile", model, "--no-latency", "--quiet", *args)
    assert res.code == 4, res.stderr
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_alloc_in_process_is_exit_4_not_an_internal_error(cli, monkeypatch):
    """--no-isolate: a MemoryError from onnx's C++ (std::bad_alloc) is a resource limit, one line."""
    import onnx

    def bad_alloc(*a, **kw):
        raise MemoryError("std::bad_alloc")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", bad_alloc)
    res = cli("profile", CORPUS / "conv_bn_relu_fc.onnx", "--no-latency", "--quiet", "--no-isolate")
    assert res.code == 4 and "out of memory while checking and inferring shapes (std::bad_alloc)" in res.stderr
    assert "rerun with --debug" not in res.stderr


def test_child_is_forked_only_without_threaded_native_libraries(monkeypatch):
    from effconv.sandbox import parent as sandbox

    monkeypatch.delenv("EFFCONV_SPAWN", raising=False)
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert sandbox._start_method() == "spawn"
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    assert sandbox._start_method() == "fork"
    monkeypatch.setenv("EFFCONV_SPAWN", "1")
    assert sandbox._start_method() == "spawn"
