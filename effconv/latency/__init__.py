"""Measured latency: one timing loop for every backend, per-layer latency, roofline.

`BACKENDS` is a plain dict keyed by the names users type (`--backend ort-cpu`). Nothing heavy is
imported here: each backend imports its runtime inside its factory.
"""

from __future__ import annotations

from effconv.errors import UsageError
from effconv.latency import backends as _b
from effconv.latency import ort as _ort
from effconv.latency import tensorrt as _trt
from effconv.latency import torch as _torch
from effconv.latency.backends import Availability, Backend
from effconv.latency.base import LatencyOptions, Statistics, Timing, compute_statistics, time_runner

BACKENDS: dict[str, Backend] = {
    "ort-cpu": Backend("ort-cpu", "onnx", "cpu", _ort.ort_cpu, _b.ort_cpu_probe, "ONNX Runtime, CPU execution provider"),
    "ort-cuda": Backend("ort-cuda", "onnx", "cuda", _ort.ort_cuda, _b.ort_cuda_probe, "ONNX Runtime, CUDA execution provider"),
    "ort-tensorrt": Backend(
        "ort-tensorrt", "onnx", "cuda", _ort.ort_tensorrt, _b.ort_tensorrt_probe, "ONNX Runtime, TensorRT execution provider"
    ),
    "tensorrt": Backend("tensorrt", "onnx", "cuda", _trt.tensorrt_runner, _b.probe_tensorrt, "TensorRT engine built from the ONNX file"),
    "torch-cpu": Backend("torch-cpu", "torch", "cpu", _torch.torch_cpu, _b.torch_cpu_probe, "PyTorch on the CPU (eager or compiled)"),
    "torch-cuda": Backend(
        "torch-cuda", "torch", "cuda", _torch.torch_cuda, _b.torch_cuda_probe, "PyTorch on CUDA (eager, compiled or CUDA graph)"
    ),
}

# Preference order when --backend is not given, per kind of model.
PREFERENCE = {"onnx": ("tensorrt", "ort-tensorrt", "ort-cuda", "ort-cpu"), "torch": ("torch-cuda", "torch-cpu")}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def best_backend(kind: str = "onnx") -> str:
    """The most capable available backend for a model of `kind` ("onnx" or "torch")."""
    for name in PREFERENCE[kind]:
        if BACKENDS[name].probe().available:
            return name
    raise UsageError(f"no {kind} backend is available; run `effconv backends` to see why")


__all__ = [
    "BACKENDS", "PREFERENCE", "Availability", "Backend", "LatencyOptions", "Statistics", "Timing",
    "best_backend", "compute_statistics", "get_backend", "time_runner",
]

_LAZY = {
    "LatencyReport": "effconv.latency.report", "measure_model": "effconv.latency.report",
    "measure_profile_latency": "effconv.latency.report", "check_budget": "effconv.latency.report",
    "render_latency": "effconv.latency.render", "plot_latency_vs_macs": "effconv.latency.render",
}


def __getattr__(name: str):
    """The reporting API, imported on first use (it needs onnx; the BACKENDS dict does not)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'effconv.latency' has no attribute {name!r}")
