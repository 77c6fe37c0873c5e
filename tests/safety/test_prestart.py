"""`effconv profile FILE` forks its sandbox worker before Typer is imported (effconv.sandbox.prestart), so
onnx loads there while the CLI parses. Each test runs the real CLI in a fresh interpreter (this
pytest process has torch loaded, where effconv never forks) and checks the same contract as a
child started after parsing: same profile, limits exit 4, crashes exit 5, one line, no orphan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from effconv.sandbox import prestart
from effconv.profile import profile_onnx

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
MODEL = CORPUS / "conv_bn_relu_fc.onnx"

# Logs, for each import of onnx or typer, the importing pid and whether typer was already loaded
# there; with ABORT_ON_ONNX=1 the process that imports onnx aborts like a crashing native parser.
HOOK = """
import os, sys
class _Log:
    def find_spec(self, name, path=None, target=None):
        if name in ("onnx", "typer", "onnxruntime"):
            line = f"{name} {os.getpid()} {'typer' in sys.modules}\\n"
            fd = os.open(os.environ["IMPORT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, line.encode()); os.close(fd)
            if name == "onnx" and os.environ.get("ABORT_ON_ONNX") == "1":
                os.write(2, b"native parser: assertion failed\\n")
                os.abort()
        return None
sys.meta_path.insert(0, _Log())
"""


@pytest.fixture
def run_cli(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(HOOK))
    log = tmp_path / "imports.log"

    def run(*args, **env) -> tuple[subprocess.CompletedProcess, list[tuple[str, int, bool]]]:
        full_env = {**os.environ, "PYTHONPATH": str(hook), "IMPORT_LOG": str(log), **env}
        full_env.pop("EFFCONV_SPAWN", None)
        res = subprocess.run([sys.executable, "-m", "effconv", *map(str, args)], capture_output=True, text=True,
                             env=full_env, timeout=120)
        rows = [ln.split() for ln in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return res, [(name, int(pid), flag == "True") for name, pid, flag in rows]

    return run


def _parent_pid(rows) -> int:
    return next(pid for name, pid, _ in rows if name == "typer")


def test_worker_imports_onnx_before_typer_and_gives_the_same_profile(run_cli, tmp_path):
    """Oracle: profile_onnx in this process; the worker is the process that imported onnx, and it
    did so without typer loaded (forked before parsing), while the parent never imported onnx."""
    out = tmp_path / "p.json"
    res, rows = run_cli("profile", MODEL, "--no-latency", "--quiet", "--json", out)
    assert res.returncode == 0, res.stderr
    parent = _parent_pid(rows)
    onnx_rows = [(pid, typer_loaded) for name, pid, typer_loaded in rows if name == "onnx"]
    assert onnx_rows and all(pid != parent and not typer_loaded for pid, typer_loaded in onnx_rows)
    doc = json.loads(out.read_text())
    want = profile_onnx(MODEL).to_dict()
    assert doc["layers"] == want["layers"] and doc["totals"] == want["totals"] and doc["by_type"] == want["by_type"]


def test_profile_with_latency_keeps_onnx_and_onnxruntime_out_of_the_cli(run_cli, tmp_path):
    """The default `effconv profile FILE`: parsed by the prestarted worker, timed by a second child
    (forked from the CLI, which has neither library loaded); the JSON carries both sections."""
    out = tmp_path / "p.json"
    res, rows = run_cli("profile", MODEL, "--quiet", "--json", out, "--backend", "ort-cpu", "--warmup-ms", "5",
                        "--duration-s", "0.05", "--iterations", "3", "--per-layer", "none")
    assert res.returncode == 0, res.stderr
    parent = _parent_pid(rows)
    assert {name for name, pid, _ in rows if pid == parent} == {"typer"}
    assert {name for name, pid, _ in rows if pid != parent} >= {"onnx", "onnxruntime"}
    doc = json.loads(out.read_text())
    assert doc["totals"] == profile_onnx(MODEL).to_dict()["totals"]
    assert doc["latency"]["backend"] == "ort-cpu" and doc["latency"]["statistics"]["iterations"] >= 3


def test_no_isolate_parses_in_the_parent(run_cli):
    """`--no-isolate` parses in the parent: onnx is imported there, after typer."""
    res, rows = run_cli("profile", MODEL, "--no-latency", "--quiet", "--no-isolate")
    assert res.returncode == 0, res.stderr
    assert ("onnx", _parent_pid(rows), True) in rows


def test_a_crash_in_the_worker_is_exit_5_in_one_line(run_cli, tmp_path):
    out = tmp_path / "p.json"
    res, rows = run_cli("profile", MODEL, "--no-latency", "--quiet", "--json", out, ABORT_ON_ONNX="1")
    assert res.returncode == 5, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("effconv:")]
    assert len(errors) == 1 and "SIGABRT" in errors[0] and "Traceback" not in res.stderr
    assert not out.exists()


def test_a_usage_error_found_by_the_worker_is_exit_2(run_cli):
    res, _ = run_cli("profile", MODEL, "--no-latency", "--quiet", "--input-shape", "nosuch=1x3x8x8")
    assert res.returncode == 2, res.stderr
    assert "--input-shape names unknown input" in res.stderr and "Traceback" not in res.stderr


def test_timeout_in_the_worker_is_exit_4(run_cli):
    res, _ = run_cli("profile", MODEL, "--no-latency", "--quiet", "--timeout-s", "0.001")
    assert res.returncode == 4, res.stderr
    assert "timed out after 0.001 s" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_an_unused_worker_is_killed_and_reaped(run_cli):
    """A usage error from Typer (unknown option) never sends the job: the worker must not outlive
    the CLI."""
    res, rows = run_cli("profile", MODEL, "--no-latency", "--no-such-option")
    assert res.returncode == 2
    workers = {pid for name, pid, _ in rows if name == "onnx"}
    assert workers, "the worker was not started"
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("args,want", [
    (["profile", "m.onnx"], True),
    (["profile", "m.onnx", "--no-isolate"], False),
    (["profile", "m.onnx", "--help"], False),
    (["profile", "spec.toml"], False),
    (["profile", "missing.onnx"], False),
    (["profile"], False),
    (["models"], False),
])
def test_wanted_only_for_a_model_file_under_isolation(tmp_path, monkeypatch, args, want):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "spec.toml").write_text("")
    monkeypatch.delenv("EFFCONV_SPAWN", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    assert prestart.wanted(args) is want
    monkeypatch.setenv("EFFCONV_SPAWN", "1")
    assert prestart.wanted(args) is False


def test_the_prestarted_job_names_the_profile_child():
    """prestart names its one job as a string (importing it would cost the CLI its start-up)."""
    from effconv.sandbox.child import profile_child

    assert prestart.JOB == f"{profile_child.__module__}.{profile_child.__qualname__}"
