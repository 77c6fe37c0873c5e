"""Per-layer latency, always in a run separate from the timed one (the timed run carries no
instrumentation). Every result states its method, what its times are, and its own overhead.

Methods (METHODS, keyed by `--per-layer` names; one module each):
- ort-profiler: ONNX Runtime's node profiler on the CPU EP (host times of CPU kernels, which ARE the
  work there). Refused on CUDA EPs: stock ORT records host times there, not GPU kernel times.
- torch-profiler: torch.profiler times of each leaf module (CPU op time on torch-cpu, CUDA kernel
  time on torch-cuda; the CUDA path is UNVERIFIED here).
- tensorrt-profiler: TensorRT IProfiler layer times, fused layers mapped back to ONNX nodes
  (UNVERIFIED here: no TensorRT in CI).
- openvino-profiler: OpenVINO's performance counters of the fused layers, mapped back to ONNX nodes
  (a ReLU fused into its Conv, reported NOT_RUN, is in that Conv's group; Reorder/Convert layers
  OpenVINO inserted are reported as such).
- isolate: each fused conv+norm+activation group (or lone node) cut into its own ONNX model with its
  real input shapes and timed by the same backend and the same timing loop. Works on every ONNX backend.
"""

from __future__ import annotations

from collections.abc import Callable

from effconv.errors import UsageError
from effconv.latency.layerwise.common import (
    MAX_PROFILED_RUNS, LayerTime, LayerwiseContext, LayerwiseResult, median_per_node, profiled_runs, result,
)
from effconv.latency.layerwise.isolate import isolate
from effconv.latency.layerwise.openvino import map_ov_layers, openvino_profiler
from effconv.latency.layerwise.ort import map_ort_nodes, ort_profiler, split_runs
from effconv.latency.layerwise.tensorrt import map_trt_layers, tensorrt_profiler
from effconv.latency.layerwise.torch import torch_profiler

METHODS: dict[str, Callable[[LayerwiseContext], LayerwiseResult]] = {
    "ort-profiler": ort_profiler,
    "torch-profiler": torch_profiler,
    "tensorrt-profiler": tensorrt_profiler,
    "openvino-profiler": openvino_profiler,
    "isolate": isolate,
}


def check_method(method: str, backend: str | None) -> None:
    """UsageError when --per-layer `method` cannot run on --backend `backend` (None: chosen later)."""
    from effconv.latency.backends import BACKENDS, method_backends

    if method in ("auto", "none") or backend not in BACKENDS or method not in METHODS:
        return
    if method not in BACKENDS[backend].methods():
        raise UsageError(f"--per-layer {method} cannot time --backend {backend}; it runs on "
                         f"{', '.join(method_backends(method))} (or use --per-layer auto)")


def measure_layers(method: str, ctx: LayerwiseContext) -> LayerwiseResult:
    from effconv.latency.backends import get_backend

    name = get_backend(ctx.backend).per_layer if method == "auto" else method
    if name not in METHODS:
        raise UsageError(f"unknown --per-layer method {method!r}; choose auto, none or {', '.join(METHODS)}")
    return METHODS[name](ctx)


__all__ = [
    "MAX_PROFILED_RUNS", "METHODS", "LayerTime", "LayerwiseContext", "LayerwiseResult", "check_method", "isolate",
    "map_ort_nodes", "map_ov_layers", "map_trt_layers", "measure_layers", "median_per_node", "openvino_profiler", "ort_profiler", "profiled_runs", "result",
    "split_runs", "tensorrt_profiler", "torch_profiler",
]
