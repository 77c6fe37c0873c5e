"""--per-layer openvino-profiler: OpenVINO's performance counters (PERF_COUNT=True,
`request.profiling_info`) of the compiled, fused model, each fused layer mapped back to the ONNX
nodes it covers.

OpenVINO names a fused layer after one of its original layers and lists all of them in the
runtime model's `originalLayersNames` (a Conv fused with its ReLU: the Conv's layer, the ReLU
reported NOT_RUN). Original names are the ONNX node names, OpenVINO's decomposition of a node
("/conv/Conv/WithoutBiases": the Conv without its bias add), or an output tensor's name (the Gemm
named "logits"): each is resolved to its ONNX node. Layers OpenVINO inserted itself (Reorder,
Convert of layouts or precisions) cover no ONNX node and are reported as such. Counter times
are the device's per-layer real times of one inference (microseconds, read after each run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effconv.errors import UsageError
from effconv.latency.layerwise.common import (
    LayerTime, LayerwiseContext, LayerwiseResult, median_per_node, profiled_runs, result,
)

if TYPE_CHECKING:
    from effconv.latency.onnxgraph import OnnxGraph

HEADS = ("Conv", "Gemm", "MatMul", "ConvTranspose")  # the node a fused group is named after, when present


def openvino_profiler(ctx: LayerwiseContext) -> LayerwiseResult:
    if ctx.backend != "openvino":
        raise UsageError("--per-layer openvino-profiler needs --backend openvino")
    from effconv.latency.backends.openvino import compile_onnx, import_ov, make_inputs, runtime_layers

    ov = import_ov()
    _, compiled = compile_onnx(ctx.onnx_path, ctx.options, perf_count=True)  # a separate, instrumented model
    request = compiled.create_infer_request()
    for i, arr in enumerate(make_inputs(compiled)):
        request.set_input_tensor(i, ov.Tensor(arr))
    runs: list[dict[str, tuple[str, float]]] = []

    def run() -> None:  # as the timed run: one request, inputs set once, no output copies
        request.start_async()
        request.wait()

    warm, totals = profiled_runs(run, ctx.options, after=lambda: runs.append(counters(request.profiling_info)))
    layers_info = runtime_layers(compiled)
    originals = {lay["name"]: lay["originals"] for lay in layers_info}
    layers = map_ov_layers(median_per_node(runs), originals, ctx.graph)
    import statistics

    return result("openvino-profiler", "OpenVINO performance counters of the fused layers (real time per layer)",
                  layers, statistics.median(totals), len(runs), _notes(layers_info, ctx.graph, layers))


def counters(profiling_info) -> dict[str, tuple[str, float]]:
    """One inference's counters: executed layer name -> (layer type, ms). NOT_RUN layers (fused
    into another, or optimized out) have no time of their own."""
    out = {}
    for p in profiling_info:
        if str(p.status).endswith("EXECUTED") and not str(p.status).endswith("NOT_EXECUTED"):
            out[p.node_name] = (p.node_type, p.real_time.total_seconds() * 1e3)
    return out


def resolve(name: str, graph: OnnxGraph) -> str | None:
    """An OpenVINO original-layer name -> the ONNX node it came from, or None."""
    nodes = {n.name for n in graph.nodes}
    candidate = name
    while candidate:
        if candidate in nodes:
            return candidate
        if candidate in graph.producer:  # named after its output tensor
            return graph.producer[candidate]
        if "/" not in candidate:
            return None
        candidate = candidate.rsplit("/", 1)[0]  # "/conv/Conv/WithoutBiases" -> "/conv/Conv"
    return None


def map_ov_layers(times: dict[str, tuple[str, float]], originals: dict[str, list[str]],
                  graph: OnnxGraph) -> list[LayerTime]:
    """Counter rows -> LayerTimes: each executed layer with the ONNX nodes its original names
    resolve to (in graph order; the head is its Conv/Gemm when it has one); a layer resolving to
    none was inserted by OpenVINO."""
    order = {n.name: n.index for n in graph.nodes}
    layers = []
    for name, (kind, ms) in times.items():
        found = {resolve(o, graph) for o in originals.get(name, [name]) or [name]}
        found.discard(None)
        if not found:
            layers.append(LayerTime(name, f"{kind} (inserted by OpenVINO)", (), ms))
            continue
        group = sorted(found, key=order.__getitem__)
        head = next((n for n in group if graph.node(n).op_type in HEADS), group[0])
        layers.append(LayerTime(head, graph.node(head).op_type, tuple(group), ms))
    return layers


def _notes(layers_info, graph: OnnxGraph, layers: list[LayerTime]) -> tuple[str, ...]:
    """Which kernels and precisions ran, and ONNX nodes that ran inside no counted layer."""
    kinds: dict[str, int] = {}
    for lay in layers_info:
        if lay["type"] in ("Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution"):
            kinds[lay["exec_type"]] = kinds.get(lay["exec_type"], 0) + 1
    notes = []
    if kinds:
        notes.append("OpenVINO kernels of the compute layers: " + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))
    covered = {n for lt in layers for n in lt.nodes}
    idle = [n.name for n in graph.nodes if n.name not in covered and n.op_type not in ("Identity", "Constant")]
    if idle:
        notes.append(f"{len(idle)} ONNX node(s) ran inside no counted layer (in place, folded or optimized out), "
                     f"e.g. {', '.join(idle[:3])}")
    return tuple(notes)
