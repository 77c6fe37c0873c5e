"""Measured memory beside the static estimate: what the process really took to create the backend's
session and to run it, each labelled with what it measures.

Linux only (other systems record nothing): the resident-set high-water mark (VmHWM) is reset
through /proc/self/clear_refs ("5") before each phase, so each figure is that phase's own peak:
  - session: VmHWM while the runner is built and prepared, minus VmRSS before (weights as the
    runtime stores them, prepacked kernels, the graph, the arena's first chunks);
  - run: VmHWM while the timed loop runs, minus VmRSS after the session was ready (activations in
    the allocator's arena, kernel workspace, thread buffers).
An allocator arena keeps what it grew to and rounds up, and pages freed by one phase can serve the
next: these are what this runtime took at these settings, not the live peak of the graph (the
static profile's `memory.peak_bytes` is that). On CUDA, torch's `max_memory_allocated` is the peak
of tensors torch allocated (its caching allocator reserves more); ONNX Runtime's CUDA arena is not
visible from outside and is not reported.
"""

from __future__ import annotations

import functools
import mmap
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status(key: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


PROBE_BYTES = 16 * 2**20  # fresh anonymous pages, touched: VmRSS must grow by them


def _touch(buf: mmap.mmap, n: int) -> None:
    """Write every page of `buf` from a 1 MiB chunk (no temporary of size n on the heap)."""
    chunk = b"\x01" * min(n, 2**20)
    for offset in range(0, n, len(chunk)):
        buf.write(chunk[: n - offset])


@functools.cache
def counters_why_not() -> str | None:
    """None when this kernel's VmRSS follows a known allocation and clear_refs resets VmHWM; else why
    not, in a few words. Sandboxed and emulated kernels can accept the clear_refs write and ignore it,
    or account resident pages in coarse chunks: a phase figure read from them would be wrong, so
    nothing is reported there. The probe maps fresh pages (never reused from an allocator's pool),
    so the growth it expects is exact; it costs a few milliseconds, once per process."""
    if not STATUS.exists() or _status("VmRSS") is None or _status("VmHWM") is None:
        return "this system has no /proc/self/status with VmRSS and VmHWM"
    if not _reset_peak():
        return "/proc/self/clear_refs is not writable here, so VmHWM cannot be reset per phase"
    before = _status("VmRSS")
    buf = mmap.mmap(-1, PROBE_BYTES)
    try:
        _touch(buf, PROBE_BYTES)
        grown = _status("VmRSS") - before
        hwm, rss = _status("VmHWM"), _status("VmRSS")
    finally:
        buf.close()
    if grown < 0.9 * PROBE_BYTES:
        return (f"VmRSS grew {grown / 2**20:.1f} MiB for {PROBE_BYTES / 2**20:.0f} MiB of fresh touched pages "
                "(this kernel does not account resident pages exactly)")
    if hwm < rss:
        return "VmHWM reads below VmRSS on this kernel"
    if not _reset_peak() or _status("VmHWM") - _status("VmRSS") > PROBE_BYTES // 2:
        return "writing 5 to /proc/self/clear_refs did not reset VmHWM on this kernel"
    return None


class PhaseMemory:
    """Peak resident-set growth of consecutive phases: construct, then `mark(name)` after each. Where the
    kernel's counters fail the probe (`counters_why_not`), nothing is measured and `to_dict` says why."""

    def __init__(self):
        self.why_not = counters_why_not()
        self.ok = self.why_not is None and _reset_peak()
        self.base = _status("VmRSS") if self.ok else None
        self.phases: dict[str, int] = {}

    def mark(self, name: str) -> None:
        if not self.ok or self.base is None:
            return
        hwm, rss = _status("VmHWM"), _status("VmRSS")
        if hwm is None or rss is None or hwm < rss:
            self.ok, self.why_not = False, f"VmHWM/VmRSS unreadable or inconsistent after phase {name!r}"
            self.phases.clear()
            return
        self.phases[name] = max(0, hwm - self.base)
        self.base = rss
        self.ok = _reset_peak()

    def to_dict(self) -> dict:
        if not self.phases or not self.ok:
            return {"measured": False, "why": self.why_not or "the peak could not be reset between phases"}
        return {"measured": True, **{f"{k}_peak_growth_bytes": v for k, v in self.phases.items()},
                "what": "peak resident-set growth of the process per phase (VmHWM reset before each): "
                        "includes the allocator's arena and workspace; not the graph's live peak"}


def torch_cuda_peak(backend: str) -> dict:
    """torch's peak allocated CUDA bytes since the last reset, for the torch-cuda backend."""
    if backend != "torch-cuda":
        return {}
    try:
        import torch

        return {"torch_cuda_max_allocated_bytes": int(torch.cuda.max_memory_allocated()),
                "torch_cuda_what": "peak bytes of tensors torch allocated (its caching allocator reserves more)"}
    except Exception:  # noqa: BLE001 (no CUDA: nothing to add)
        return {}


def reset_torch_cuda_peak(backend: str) -> None:
    if backend != "torch-cuda":
        return
    try:
        import torch

        torch.cuda.reset_peak_memory_stats()
    except Exception:  # noqa: BLE001
        return
