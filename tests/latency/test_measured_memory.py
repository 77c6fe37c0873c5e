"""Measured memory per phase (peak resident-set growth), against allocations of known size."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from effconv.latency.memory import PhaseMemory, _status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


def test_each_phase_sees_its_own_peak():
    """The oracle is the process's own VmRSS read while each allocation is alive: the phase's peak
    growth can be no less than that (in a long test process the allocator may reuse pages it already
    holds, so the growth an allocation causes is read, not assumed to be its size)."""
    mem = PhaseMemory()
    base = _status("VmRSS")
    a = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    grown_a = _status("VmRSS") - base
    mem.mark("first")
    del a
    b = np.ones(16 * 2**20 // 8)  # 16 MiB: the first phase's peak must not leak into this one
    mem.mark("second")
    del b
    first, second = mem.phases["first"], mem.phases["second"]
    assert grown_a <= first < 100 * 2**20
    assert grown_a > 16 * 2**20 and second < 40 * 2**20
    doc = mem.to_dict()
    assert doc["measured"] and doc["first_peak_growth_bytes"] == first and "not the graph's live peak" in doc["what"]


def test_latency_report_carries_measured_memory(cli, tmp_path):
    import json

    out = tmp_path / "p.json"
    res = cli("profile", "resnet20", "--no-layers", "--per-layer", "none", "--iterations", "5", "--duration-s", "0.1",
              "--json", out)
    assert res.code == 0, res.stderr
    mem = json.loads(out.read_text())["latency"]["environment"]["measured_memory"]
    assert mem["measured"] and mem["session_peak_growth_bytes"] > 0 and "run_peak_growth_bytes" in mem
    assert "measured memory: +" in res.stdout and "peak live activations" in res.stdout
