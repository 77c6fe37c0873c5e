"""Measured memory per phase (peak resident-set growth), against allocations of known size.

The oracle for the real counters is fresh anonymous pages (mmap, every page touched): they are never
served from an allocator's pool, so VmRSS must grow by their size. Where this kernel's counters fail
effconv's own probe, the real-counter tests skip with the probe's words and the report must say
"not measured" with them; the arithmetic is checked on scripted counters everywhere."""

from __future__ import annotations

import json
import mmap
import sys

import pytest

from effconv.latency import memory
from effconv.latency.memory import PhaseMemory, counters_why_not

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
MiB = 2**20


def _touched(n: int) -> mmap.mmap:
    buf = mmap.mmap(-1, n)
    memory._touch(buf, n)
    return buf


class _Counters:
    """Scripted VmRSS / VmHWM: `alloc` and `free` move RSS; HWM follows unless `broken_reset`."""

    def __init__(self, broken_reset=False, rss_scale=1.0):
        self.rss = self.hwm = 100 * MiB
        self.broken_reset, self.rss_scale = broken_reset, rss_scale

    def status(self, key):
        return {"VmRSS": self.rss, "VmHWM": self.hwm}[key]

    def reset(self):
        if not self.broken_reset:
            self.hwm = self.rss
        return True

    def alloc(self, n):
        self.rss += int(n * self.rss_scale)
        self.hwm = max(self.hwm, self.rss)

    def free(self, n):
        self.rss -= int(n * self.rss_scale)


@pytest.fixture
def scripted(monkeypatch):
    def install(counters):
        memory.counters_why_not.cache_clear()
        monkeypatch.setattr(memory, "_status", counters.status)
        monkeypatch.setattr(memory, "_reset_peak", counters.reset)
        real_mmap = mmap.mmap

        class Probe:  # the probe's mmap moves the scripted RSS by its size
            def __init__(self, fd, n):
                self.n, self.buf = n, real_mmap(fd, n)
                counters.alloc(n)

            def write(self, data):
                self.buf.write(data)

            def close(self):
                self.buf.close()
                counters.free(self.n)

        monkeypatch.setattr(memory.mmap, "mmap", Probe)
        return counters

    yield install
    memory.counters_why_not.cache_clear()


def test_phase_arithmetic_on_consistent_counters(scripted):
    c = scripted(_Counters())
    mem = PhaseMemory()
    c.alloc(64 * MiB)
    c.free(64 * MiB)  # freed within its phase: the peak is what counts
    mem.mark("first")
    c.alloc(16 * MiB)  # the first phase's peak must not leak into this one
    mem.mark("second")
    c.free(16 * MiB)
    mem.mark("third")  # never rose above where it started
    doc = mem.to_dict()
    assert doc["measured"] and doc["first_peak_growth_bytes"] == 64 * MiB
    assert doc["second_peak_growth_bytes"] == 16 * MiB and doc["third_peak_growth_bytes"] == 0
    assert "not the graph's live peak" in doc["what"]


@pytest.mark.parametrize("counters, words", [
    (_Counters(broken_reset=True), "did not reset VmHWM"),
    (_Counters(rss_scale=0.25), "does not account resident pages exactly"),
])
def test_counters_that_fail_the_probe_measure_nothing_and_say_why(scripted, counters, words):
    scripted(counters)
    mem = PhaseMemory()
    counters.alloc(64 * MiB)
    mem.mark("session")
    doc = mem.to_dict()
    assert doc == {"measured": False, "why": doc["why"]} and words in doc["why"]


@linux
def test_each_phase_sees_its_own_peak():
    why = counters_why_not()
    if why:
        pytest.skip(f"this kernel's memory counters fail effconv's probe: {why}")
    mem = PhaseMemory()
    _touched(64 * MiB).close()  # each phase maps, touches and unmaps: its peak is the oracle
    mem.mark("first")
    _touched(16 * MiB).close()
    mem.mark("second")
    first, second = mem.phases["first"], mem.phases["second"]
    assert 0.9 * 64 * MiB <= first < 100 * MiB
    assert 0.9 * 16 * MiB <= second < 40 * MiB  # the 64 MiB peak was reset away


@linux
def test_latency_report_carries_measured_memory(cli, tmp_path):
    out = tmp_path / "p.json"
    res = cli("profile", "resnet20", "--no-layers", "--per-layer", "none", "--iterations", "5", "--duration-s", "0.1",
              "--json", out)
    assert res.code == 0, res.stderr
    mem = json.loads(out.read_text())["latency"]["environment"]["measured_memory"]
    why = counters_why_not()
    if why is None:
        assert mem["measured"] and mem["session_peak_growth_bytes"] > 0 and "run_peak_growth_bytes" in mem
        assert "measured memory: +" in res.stdout and "peak live activations" in res.stdout
    else:  # the child process ran the same probe on the same kernel
        assert mem == {"measured": False, "why": why}
        assert f"measured memory: not measured ({why})" in res.stdout
