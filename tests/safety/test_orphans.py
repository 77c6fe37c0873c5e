"""kill -9 of `effconv profile` / `effconv latency` while their sandbox child works: the child dies
with its parent (PR_SET_PDEATHSIG), within 2 s, instead of running on for minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def _conv_onnx(path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _children(pid: int) -> set[int]:
    """Live descendants of `pid` (from /proc), zombies excluded."""
    found, frontier = set(), {pid}
    while frontier:
        nxt = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in frontier and fields[0] != "Z" and int(entry.name) not in found:
                nxt.add(int(entry.name))
        found |= nxt
        frontier = nxt
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


SLEEPER = """
import sys, time
from effconv.sandbox import run_isolated
run_isolated(time.sleep, 120, mem_limit_mb=None, timeout_s=None)
"""


def _kill_parent_and_check(proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    kids: set[int] = set()
    while not kids:  # the sandbox child
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no sandbox child appeared"
        time.sleep(0.2)
        kids = _children(proc.pid)
    time.sleep(1.0)  # let it get to work
    kids = _children(proc.pid) or kids
    assert proc.poll() is None and any(_alive(k) for k in kids), "the command ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    gone_by = time.monotonic() + 2.0
    while any(_alive(k) for k in kids) and time.monotonic() < gone_by:
        time.sleep(0.05)
    left = [k for k in kids if _alive(k)]
    for k in left:
        os.kill(k, signal.SIGKILL)
    assert not left, f"children {left} outlived their parent by 2 s"


@pytest.mark.parametrize("spawn", ["0", "1"])
def test_kill9_of_a_sandbox_parent_kills_its_child(spawn):
    """The sandbox itself, forked and spawned children (the CLI cases below use it)."""
    env = {**os.environ, "EFFCONV_SPAWN": spawn}
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        _kill_parent_and_check(proc)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("command", [
    ["latency", "{model}", "--backend", "ort-cpu", "--duration-s", "120", "--per-layer", "none"],
    ["profile", "{model}", "--backend", "ort-cpu", "--duration-s", "120", "--per-layer", "none"],
])
def test_kill9_of_the_parent_leaves_no_child(tmp_path, command):
    model = _conv_onnx(tmp_path / "m.onnx")
    argv = [sys.executable, "-m", "effconv", *(a.format(model=model) for a in command)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _kill_parent_and_check(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
