"""Faults during `effconv export` leave no staging folder behind: SIGTERM cleans up at once
(exit 130); after kill -9 the next export into the same folder removes the dead one's stage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effconv.export.staging import OWNER, STAGE_PREFIX, remove_stale_stages, staging_dir

MODEL = "resnet56"  # big enough that the export is still staging when the signal comes


def _start_export(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "effconv", "export", MODEL, "-o", str(out), "--parity-images", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _stages(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{STAGE_PREFIX}*"))


def _wait_for_stage(folder: Path, proc: subprocess.Popen, timeout: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in _stages(folder) if any(p.name != OWNER for p in s.iterdir())]
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the export never staged a file"
        time.sleep(0.01)


def test_sigterm_during_export_removes_the_stage(tmp_path):
    proc = _start_export(tmp_path / "m.onnx")
    _wait_for_stage(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "terminated" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_kill9_stage_is_removed_by_the_next_export(tmp_path, cli):
    proc = _start_export(tmp_path / "m.onnx")
    stage = _wait_for_stage(tmp_path, proc)
    proc.kill()
    proc.wait(30)
    assert stage.is_dir()  # nothing could clean up after kill -9 ...
    res = cli("export", "mobilenet_v1_cifar", "-o", tmp_path / "next.onnx", "--parity-images", "2")
    assert res.code == 0, res.stderr
    assert _stages(tmp_path) == []  # ... but the next export did
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next.onnx"]


def test_a_live_exports_stage_is_left_alone(tmp_path):
    with staging_dir(tmp_path) as mine:
        other = tmp_path / f"{STAGE_PREFIX}live"
        other.mkdir()
        (other / OWNER).write_text(f"{os.getppid()} \n")  # alive: our parent (start time unknown: "")
        (tmp_path / f"{STAGE_PREFIX}dead").mkdir()
        (tmp_path / f"{STAGE_PREFIX}dead" / OWNER).write_text("999999999 1\n")  # no such pid
        removed = remove_stale_stages(tmp_path)
        assert [p.name for p in removed] == [f"{STAGE_PREFIX}dead"]
        assert mine.is_dir() and other.is_dir()


@pytest.mark.parametrize("start", ["", "12345"])
def test_a_reused_pid_is_stale(tmp_path, start):
    """The owner's pid now belongs to another process (different start time): stale."""
    from effconv.export import staging

    stage = tmp_path / f"{STAGE_PREFIX}x"
    stage.mkdir()
    real = staging._start_time(os.getppid())
    (stage / OWNER).write_text(f"{os.getppid()} {start or real}\n")
    assert staging._is_stale(stage) is (start != "" and start != real)
