"""--per-layer ort-profiler: ONNX Runtime's node profiler on the CPU EP (host times of CPU kernels,
which ARE the work there). Refused on CUDA EPs: stock ORT records host times there, not GPU
kernel times."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from effconv.errors import UsageError
from effconv.latency.layerwise.common import (
    LayerTime, LayerwiseContext, LayerwiseResult, median_per_node, profiled_runs, result,
)

if TYPE_CHECKING:
    from effconv.latency.onnxgraph import OnnxGraph


def ort_profiler(ctx: LayerwiseContext) -> LayerwiseResult:
    if ctx.backend != "ort-cpu":
        raise UsageError(
            f"--per-layer ort-profiler runs on ort-cpu only: on {ctx.backend} ONNX Runtime records host "
            "times, not GPU latency; use --per-layer isolate"
        )
    from effconv.latency.backends.ort import import_ort, make_inputs, session_options

    ort = import_ort()
    with tempfile.TemporaryDirectory(prefix="effconv-ortprof-") as tmp:
        so = session_options(ctx.options, profile_prefix=str(Path(tmp) / "trace"))
        session = ort.InferenceSession(str(ctx.onnx_path), so, providers=["CPUExecutionProvider"])
        feeds = make_inputs(session, ctx.options)
        warm, totals = profiled_runs(lambda: session.run(None, feeds), ctx.options)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = split_runs(events)[warm:]
    layers = map_ort_nodes(median_per_node(runs), ctx.graph)
    return result("ort-profiler", "ONNX Runtime CPU EP node times (host clock; CPU kernels run on the host)",
                   layers, statistics.median(totals), len(runs))


def split_runs(events: list[dict]) -> list[dict[str, tuple[str, float]]]:
    """ORT trace -> one dict per run: node event name -> (op_name, ms). A run ends at `model_run`."""
    runs, current = [], {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            op, prev = e.get("args", {}).get("op_name", "?"), current.get(e["name"][: -len("_kernel_time")])
            current[name] = (op, (prev[1] if prev else 0.0) + e["dur"] / 1e3)  # dur is in microseconds
        elif e.get("cat") == "Session" and e.get("name") == "model_run":
            runs.append(current)
            current = {}
    return runs


def map_ort_nodes(times: dict[str, tuple[str, float]], graph: OnnxGraph) -> list[LayerTime]:
    """Optimised-graph node names -> ONNX nodes. ORT keeps a node's name when it fuses into it
    (FusedConv keeps the Conv's name) and names NCHWc nodes after the fused group's output tensor
    plus `_nchwc`; nodes it inserts itself (layout reorders) match nothing and are kept as such."""
    from effconv.latency.onnxgraph import fused_group_ending_at

    names = {n.name for n in graph.nodes}
    layers = []
    for event, (op, ms) in times.items():
        base = event[: -len("_nchwc")] if event.endswith("_nchwc") else event
        if base in names:
            group = fused_group_ending_at(graph, base) if graph.node(base).op_type not in ("Conv", "Gemm") else [base]
        elif base in graph.producer:
            group = fused_group_ending_at(graph, graph.producer[base])
        else:
            layers.append(LayerTime(event, f"{op} (inserted by ONNX Runtime)", (), ms))
            continue
        head = graph.node(group[0])
        layers.append(LayerTime(head.name, head.op_type, tuple(group), ms))
    return layers
