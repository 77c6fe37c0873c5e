"""Per-layer latency, always in a run separate from the timed one (the timed run carries no
instrumentation). Every result states its method, what its times are, and its own overhead.

Methods (METHODS, keyed by `--per-layer` names):
- ort-profiler: ONNX Runtime's node profiler on the CPU EP (host times of CPU kernels, which ARE the
  work there). Refused on CUDA EPs: stock ORT records host times there, not GPU kernel times.
- torch-profiler: torch.profiler times of each leaf module (CPU op time on torch-cpu, CUDA kernel
  time on torch-cuda; the CUDA path is UNVERIFIED here).
- tensorrt-profiler: TensorRT IProfiler layer times, fused layers mapped back to ONNX nodes
  (UNVERIFIED here: no TensorRT in CI).
- isolate: each fused conv+norm+activation group (or lone node) cut into its own ONNX model with its
  real input shapes and timed by the same backend and the same timing loop. Works on every ONNX backend.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effconv.errors import UsageError
from effconv.latency.base import LatencyOptions, time_runner

if TYPE_CHECKING:  # numpy and onnx are imported by the functions that measure: the CLI process that
    # only renders a child's report (LayerTime, LayerwiseResult) loads neither
    from effconv.latency.onnxgraph import OnnxGraph


@dataclass(frozen=True)
class LayerTime:
    name: str  # the ONNX node that heads the fused group (or a torch module / runtime-inserted node)
    op_type: str
    nodes: tuple[str, ...]  # every ONNX node covered; empty for nodes the runtime inserted itself
    ms: float  # per inference


@dataclass(frozen=True)
class LayerwiseResult:
    method: str
    measures: str  # what the times are, in words
    layers: tuple[LayerTime, ...]
    sum_ms: float
    instrumented_ms: float | None  # median per-inference time of the instrumented run itself
    runs: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerwiseContext:
    backend: str
    options: LatencyOptions
    onnx_path: Path | None = None
    graph: OnnxGraph | None = None
    build: Callable[[], Any] | None = None  # torch backends: returns the nn.Module
    input_shape: tuple[int, ...] | None = None
    runner: Any = None  # a prepared runner (tensorrt-profiler reuses its engine)


# The per-layer pass stops after this many profiled runs (or --iterations, if more): a per-node
# median needs no more, and a profiler's trace grows with every run (ONNX Runtime's JSON trace of
# a 30 s run of a small model reached 6 GB of memory when parsed).
MAX_PROFILED_RUNS = 200


def _profiled_runs(run: Callable[[], object], options: LatencyOptions) -> tuple[int, list[float]]:
    """Warm-up by time, then at least `iterations` runs and `duration_s`, at most
    max(iterations, MAX_PROFILED_RUNS) runs; host ms per timed run."""
    warm, start = 0, time.perf_counter()
    while warm == 0 or (time.perf_counter() - start) * 1e3 < options.warmup_ms:
        run()
        warm += 1
    totals: list[float] = []
    start = time.perf_counter()
    cap = max(options.iterations, MAX_PROFILED_RUNS)
    while len(totals) < options.iterations or (time.perf_counter() - start < options.duration_s and len(totals) < cap):
        t0 = time.perf_counter()
        run()
        totals.append((time.perf_counter() - t0) * 1e3)
    return warm, totals


def ort_profiler(ctx: LayerwiseContext) -> LayerwiseResult:
    if ctx.backend != "ort-cpu":
        raise UsageError(
            f"--per-layer ort-profiler runs on ort-cpu only: on {ctx.backend} ONNX Runtime records host "
            "times, not GPU latency; use --per-layer isolate"
        )
    from effconv.latency.ort import import_ort, make_inputs, session_options

    ort = import_ort()
    with tempfile.TemporaryDirectory(prefix="effconv-ortprof-") as tmp:
        so = session_options(ctx.options, profile_prefix=str(Path(tmp) / "trace"))
        session = ort.InferenceSession(str(ctx.onnx_path), so, providers=["CPUExecutionProvider"])
        feeds = make_inputs(session, ctx.options.batch)
        warm, totals = _profiled_runs(lambda: session.run(None, feeds), ctx.options)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = split_runs(events)[warm:]
    layers = map_ort_nodes(median_per_node(runs), ctx.graph)
    return _result("ort-profiler", "ONNX Runtime CPU EP node times (host clock; CPU kernels run on the host)",
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


def median_per_node(runs: list[dict[str, tuple[str, float]]]) -> dict[str, tuple[str, float]]:
    """Per-node mean over the middle runs: runs ranked by their node total, the middle half kept
    (at least one). The node times then sum to about the median run, robust to outlier runs; a
    per-node median would not (noise spread over many nodes makes the sum of medians too small)."""
    ranked = sorted(runs, key=lambda r: sum(ms for _, ms in r.values()))
    keep = ranked[len(ranked) // 4: len(ranked) - len(ranked) // 4] or ranked
    names = dict.fromkeys(n for r in runs for n in r)
    ops = {n: r[n][0] for r in runs for n in r}
    return {n: (ops[n], statistics.fmean([r.get(n, ("", 0.0))[1] for r in keep])) for n in names}


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
    return _result("tensorrt-profiler", "TensorRT IProfiler layer times (UNVERIFIED in this project)",
                   map_trt_layers(times, ctx.graph), total, runs)


def isolate(ctx: LayerwiseContext) -> LayerwiseResult:
    """Time each fused group alone on the same backend with the same loop (shorter duration)."""
    from effconv.latency.backends import get_backend
    from effconv.latency.onnxgraph import fused_groups, submodel

    backend = get_backend(ctx.backend)
    if backend.kind != "onnx":
        raise UsageError(f"--per-layer isolate needs an ONNX backend, not {ctx.backend}")
    short = replace(ctx.options, warmup_ms=min(ctx.options.warmup_ms, 20.0), duration_s=min(ctx.options.duration_s, 0.05),
                    iterations=min(ctx.options.iterations, 10))
    layers, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="effconv-isolate-") as tmp:
        for i, group in enumerate(fused_groups(ctx.graph)):
            path = Path(tmp) / f"g{i}.onnx"
            import onnx

            onnx.save(submodel(ctx.graph, group), str(path))
            try:
                runner = backend.make(path, short)
                runner.prepare()
            except Exception as exc:  # noqa: BLE001 - a node that cannot run alone is reported, not fatal
                skipped.append(f"{group[0]}: {str(exc).splitlines()[0][:120]}")
                continue
            ms = time_runner(runner, short).stats.median_ms
            head = ctx.graph.node(group[0])
            layers.append(LayerTime(head.name, head.op_type, tuple(group), ms))
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    notes = (f"{len(skipped)} group(s) could not run alone: " + "; ".join(skipped[:3]) + more,) if skipped else ()
    return _result("isolate", f"each fused group timed alone on {ctx.backend} (median of the same timing loop)",
                   layers, None, len(layers), notes)


def _result(method, measures, layers, instrumented, runs, notes=()) -> LayerwiseResult:
    layers = tuple(layers)
    return LayerwiseResult(method, measures, layers, sum(lt.ms for lt in layers), instrumented, runs, tuple(notes))


def torch_profiler(ctx: LayerwiseContext) -> LayerwiseResult:
    from effconv.latency.torchprof import profile_modules  # its own module, for size

    return profile_modules(ctx)

METHODS: dict[str, Callable[[LayerwiseContext], LayerwiseResult]] = {
    "ort-profiler": ort_profiler,
    "torch-profiler": torch_profiler,
    "tensorrt-profiler": tensorrt_profiler,
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
