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


class PhaseMemory:
    """Peak resident-set growth of consecutive phases: `start()`, then `mark(name)` after each."""

    def __init__(self):
        self.ok = STATUS.exists() and _reset_peak()
        self.base = _status("VmRSS") if self.ok else None
        self.phases: dict[str, int] = {}

    def mark(self, name: str) -> None:
        if not self.ok or self.base is None:
            return
        hwm, rss = _status("VmHWM"), _status("VmRSS")
        if hwm is None or rss is None:
            self.ok = False
            return
        self.phases[name] = max(0, hwm - self.base)
        self.base = rss
        self.ok = _reset_peak()

    def to_dict(self) -> dict:
        if not self.phases:
            return {"measured": False, "why": "needs Linux's /proc/self/status and clear_refs"}
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
