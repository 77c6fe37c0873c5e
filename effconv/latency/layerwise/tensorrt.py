"""--per-layer tensorrt-profiler: TensorRT IProfiler layer times, fused layers mapped back to ONNX
nodes (UNVERIFIED here: no TensorRT in CI)."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from effconv.errors import UsageError
from effconv.latency.layerwise.common import LayerTime, LayerwiseContext, LayerwiseResult, result

if TYPE_CHECKING:
    from effconv.latency.onnxgraph import OnnxGraph


def map_trt_layers(times: dict[str, float], graph: OnnxGraph) -> list[LayerTime]:
    """TensorRT layer names contain the ONNX node names they fuse ("a + b", "PWN(a, b)"): match
    the longest names first; a fused layer's time goes to its first ONNX node, covering all of them.
    Layers naming no ONNX node (reformats, copies) are kept under their TensorRT name."""
    by_length = sorted((n.name for n in graph.nodes), key=len, reverse=True)
    order = {n.name: n.index for n in graph.nodes}
    layers = []
    for layer, ms in times.items():
        rest, found = layer, []
        for name in by_length:
            pattern = rf"(?<![\w/.:-]){re.escape(name)}(?![\w/.:-])"
            if re.search(pattern, rest):
                found.append(name)
                rest = re.sub(pattern, " ", rest)
        if not found:
            layers.append(LayerTime(layer, "TensorRT layer (no ONNX node)", (), ms))
            continue
        found.sort(key=order.__getitem__)
        head = graph.node(found[0])
        layers.append(LayerTime(head.name, head.op_type, tuple(found), ms))
    return layers


def tensorrt_profiler(ctx: LayerwiseContext) -> LayerwiseResult:
    if ctx.backend != "tensorrt":
        raise UsageError("--per-layer tensorrt-profiler needs --backend tensorrt")
    runner = ctx.runner
    runs = max(ctx.options.iterations, 10)
    start = time.perf_counter()
    times = runner.layer_times(runs)
    total = (time.perf_counter() - start) * 1e3 / runs  # host ms per profiled run, incl. callbacks
    return result("tensorrt-profiler", "TensorRT IProfiler layer times (UNVERIFIED in this project)",
                   map_trt_layers(times, ctx.graph), total, runs)
