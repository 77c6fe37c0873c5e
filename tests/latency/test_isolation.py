"""`effconv latency FILE.onnx` times the file in a limited child process by default: the report is
the one measured in-process (rebuilt from its JSON document), this process never loads ONNX
Runtime, a native crash there is exit 5 and a limit exit 4, each one line, and the CLI lives on."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

from effconv.errors import CheckFailedError
from effconv.latency.base import LatencyOptions
from effconv.latency.isolated import isolation_limits
from effconv.latency.render import plot_latency_vs_macs, render_latency
from effconv.latency.api import check_budget, measure_model, measure_profile_latency
from effconv.latency.report import LatencyReport
from effconv.sandbox import Limits

FAST = {"backend": "ort-cpu", "threads": 2, "warmup_ms": 5, "duration_s": 0.05, "iterations": 3}
CLI_FAST = ("--backend", "ort-cpu", "--threads", "2", "--warmup-ms", "5", "--duration-s", "0.05", "--iterations", "3")


@pytest.mark.parametrize("per_layer", ["auto", "none"])
def test_from_dict_rebuilds_a_measured_report(tiny_onnx, tmp_path, per_layer):
    """Oracle: the report measured in this process; the rebuilt one goes through JSON text, as the
    child's does, and every consumer of a report works on it."""
    report = measure_model(tiny_onnx, LatencyOptions(**FAST, per_layer=per_layer), isolate=False)
    doc = report.to_dict()
    rebuilt = LatencyReport.from_dict(json.loads(json.dumps(doc)), profile=report.profile,
                                      samples_ms=list(report.timing.samples_ms))
    assert rebuilt.to_dict() == doc
    assert rebuilt.timing == report.timing and rebuilt.layerwise == report.layerwise
    assert rebuilt.by_type == report.by_type and rebuilt.types_of == report.types_of
    assert rebuilt.environment == report.environment and rebuilt.notes == report.notes
    assert (rebuilt.layerwise is None) == (per_layer == "none")
    out = io.StringIO()
    render_latency(rebuilt, Console(file=out, width=200))
    assert "End-to-end latency" in out.getvalue()
    check_budget(rebuilt, 1e6)
    with pytest.raises(CheckFailedError, match="exceeds the budget"):
        check_budget(rebuilt, 1e-9)
    if rebuilt.layerwise is not None:
        png = plot_latency_vs_macs(rebuilt.profile, rebuilt, tmp_path / "lat.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_isolated_run_matches_the_in_process_one(tiny_onnx):
    """Timings differ run to run; what is measured (nodes, types, batch, backend, profile) must not."""
    options = LatencyOptions(**FAST)
    local = measure_model(tiny_onnx, options, isolate=False)
    iso = measure_model(tiny_onnx, options, isolate=True, limits=Limits(2048, 60))
    assert (iso.backend, iso.batch, iso.environment["backend"]) == ("ort-cpu", 1, "ort-cpu")
    assert [lt.name for lt in iso.layerwise.layers] == [lt.name for lt in local.layerwise.layers]
    assert {t.type for t in iso.by_type} == {t.type for t in local.by_type}
    assert iso.profile == local.profile and iso.profile.totals.mult_adds > 0
    s = iso.timing.stats
    assert s.iterations == len(iso.timing.samples_ms) >= 3
    assert 0 < s.min_ms <= s.median_ms <= s.p99_ms and s.throughput > 0
    assert iso.layerwise.sum_ms > 0 and iso.timing.warmup_iterations >= 1


def test_profile_latency_in_a_child_keeps_the_given_profile(tiny_onnx):
    from effconv.profile import profile_onnx

    prof = profile_onnx(tiny_onnx)
    report = measure_profile_latency(prof, LatencyOptions(**FAST, per_layer="none"), isolate=True)
    assert report.profile is prof and report.backend == "ort-cpu" and report.median_ms > 0


def test_the_parent_never_imports_onnxruntime(tiny_onnx):
    """In a fresh interpreter (this one has ONNX Runtime loaded): the isolated run, auto backend
    included, leaves onnxruntime out of sys.modules; the in-process run, as a control, does not."""
    code = textwrap.dedent("""
        import sys
        from effconv.latency.base import LatencyOptions
        from effconv.latency.api import measure_model
        options = LatencyOptions(threads=2, warmup_ms=5, duration_s=0.05, iterations=3, per_layer="none")
        r = measure_model(sys.argv[1], options)
        print(r.backend, r.median_ms > 0, "onnxruntime" in sys.modules)
        measure_model(sys.argv[1], options, isolate=False)
        print("onnxruntime" in sys.modules)
    """)
    env = {k: v for k, v in os.environ.items() if k != "EFFCONV_SPAWN"}
    res = subprocess.run([sys.executable, "-c", code, str(tiny_onnx)], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ort-cpu", "True", "False", "True"]


def test_native_crash_in_the_child_is_exit_5_and_the_cli_lives_on(cli, tiny_onnx, tmp_path, monkeypatch):
    """A sitecustomize on PYTHONPATH (read by new interpreters only: the spawned child, not this
    process) aborts the child when it loads ONNX Runtime, as a crashing native runtime would."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import os, sys
        class _AbortOnOrt:
            def find_spec(self, name, path=None, target=None):
                if name == "onnxruntime":
                    os.write(2, b"native runtime: assertion failed\\n")
                    os.abort()
        sys.meta_path.insert(0, _AbortOnOrt())
    """))
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("EFFCONV_SPAWN", "1")
    out = tmp_path / "lat.json"
    res = cli("latency", tiny_onnx, *CLI_FAST, "--quiet", "--json", out)
    assert res.code == 5, res.stderr
    assert "SIGABRT" in res.stderr and "assertion failed" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()
    res = cli("latency", tiny_onnx, *CLI_FAST, "--per-layer", "none", "--quiet", "--no-isolate", "--json", out)
    assert res.code == 0, res.stderr
    assert json.loads(out.read_text())["latency"]["statistics"]["median_ms"] > 0


def test_timeout_is_exit_4_and_writes_no_json(cli, tiny_onnx, tmp_path):
    """100,000 iterations outlast 0.5 s: no warm-up or duration is expected, so the limit stays 0.5 s."""
    out = tmp_path / "lat.json"
    res = cli("latency", tiny_onnx, "--backend", "ort-cpu", "--warmup-ms", "0", "--duration-s", "0",
              "--iterations", "100000", "--per-layer", "none", "--timeout-s", "0.5", "--quiet", "--json", out)
    assert res.code == 4, res.stderr
    assert "timed out after 0.5 s" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _expand_model(path, gib: int = 2):
    """Expand a [1, 4] input to [gib * 2**27, 4] float32: `gib` GiB allocated at run time."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([gib << 27, 4], np.int64), "shape")
    nodes = [helper.make_node("Expand", ["x", "shape"], ["e"]), helper.make_node("ReduceSum", ["e"], ["y"], keepdims=0)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])], [shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_runaway_allocation_is_exit_4(cli, tmp_path):
    model = _expand_model(tmp_path / "expand.onnx")
    res = cli("latency", model, *CLI_FAST, "--per-layer", "none", "--mem-limit-mb", "1024", "--quiet")
    assert res.code == 4, res.stderr
    assert "out of memory under the 1024 MB limit while timing the model" in res.stderr.splitlines()[-1]


def test_cli_json_has_the_same_shape_isolated_or_not(cli, tiny_onnx, tmp_path):
    docs = {}
    for flag in ("--isolate", "--no-isolate"):
        out = tmp_path / f"{flag}.json"
        res = cli("latency", tiny_onnx, *CLI_FAST, flag, "--quiet", "--json", out)
        assert res.code == 0, res.stderr
        docs[flag] = json.loads(out.read_text())["latency"]
    iso, local = docs["--isolate"], docs["--no-isolate"]
    assert iso.keys() == local.keys() and iso["statistics"].keys() == local["statistics"].keys()
    assert iso["per_layer"].keys() == local["per_layer"].keys()
    assert [r["name"] for r in iso["per_layer"]["layers"]] == [r["name"] for r in local["per_layer"]["layers"]]


@pytest.mark.parametrize("backend, per_layer, mem, timeout", [
    ("ort-cpu", "auto", 4096, 300 + (0.2 + 1.0) * 2),  # two passes (timed, per-layer)
    ("ort-cpu", "none", 4096, 300 + (0.2 + 1.0) * 1),
    ("ort-cuda", "auto", None, 300 + (0.2 + 1.0) * 2),  # CUDA reserves address space: no RLIMIT_AS
    ("ort-tensorrt", "auto", None, 300 + (0.2 + 1.0) * 2),
    ("tensorrt", "none", None, 300 + (0.2 + 1.0) * 1),
])
def test_isolation_limits(backend, per_layer, mem, timeout):
    """Wall clock: the user's timeout + the expected run; CPU time (all threads) that times 2 threads."""
    options = LatencyOptions(backend=backend, per_layer=per_layer, threads=2, warmup_ms=200, duration_s=1.0)
    got = isolation_limits(options, Limits(4096, 300.0))
    assert got.mem_limit_mb == mem and got.timeout_s == pytest.approx(timeout)
    assert got.cpu_s == pytest.approx(timeout * 2)
    assert isolation_limits(options, Limits(None, None)) == Limits(None, None)


def test_many_threads_do_not_stretch_the_wall_clock():
    """--threads 1000 --timeout-s 10 used to allow 10 + 1000 x the run (minutes of hang)."""
    options = LatencyOptions(backend="ort-cpu", per_layer="none", threads=1000, warmup_ms=0, duration_s=1.0)
    got = isolation_limits(options, Limits(4096, 10.0))
    assert got.timeout_s == pytest.approx(11.0) and got.cpu_s == pytest.approx(11_000.0)


@pytest.mark.parametrize("backend, onnx_file, isolate, expected", [
    ("ort-cpu", True, True, True),
    (None, True, True, True),  # the best ONNX backend, chosen in the child
    ("torch-cpu", True, True, False),  # torch backends time effconv's own module, in-process
    ("ort-cpu", True, False, False),
    ("ort-cpu", False, True, False),  # nothing on disk to time
])
def test_which_runs_go_to_a_child(tmp_path, backend, onnx_file, isolate, expected):
    from effconv.latency.api import in_child as _in_child
    from effconv.latency.source import ModelInput

    model = ModelInput("m", tmp_path / "m.onnx" if onnx_file else None, None, (1, 3, 8, 8))
    assert _in_child(model, LatencyOptions(backend=backend), isolate) is expected
