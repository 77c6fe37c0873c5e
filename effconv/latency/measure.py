"""One measurement in this process: build the backend's runner, the timed run (base.time_runner,
THE timing loop, no instrumentation), the per-layer run (effconv.latency.layerwise) and their join
with the static profile (Mult-Adds and bytes per layer type) and a device roofline. Runs in the CLI
process for effconv's own models and in the sandbox child for files from outside
(effconv.latency.isolated); effconv.latency.api decides which."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from effconv.errors import EffconvError, UsageError
from effconv.latency.backends import best_backend, check_mode, check_precision, get_backend
from effconv.latency.base import LatencyOptions, host_environment, time_runner
from effconv.latency.layerwise import LayerwiseContext, measure_layers
from effconv.latency.memory import PhaseMemory, reset_torch_cuda_peak, torch_cuda_peak
from effconv.latency.report import LatencyReport, TypeLatency
from effconv.latency.roofline import load_device_profile, roofline
from effconv.latency.shapes import resolve_input_shapes
from effconv.latency.source import ModelInput
from effconv.latency.throughput import time_load

if TYPE_CHECKING:  # onnx is imported where a measurement runs
    from effconv.latency.onnxgraph import OnnxGraph


def build_runner(backend: str, model: ModelInput, options: LatencyOptions):
    """The backend's Runner (latency mode) or LoadRunner (throughput mode) for `model`."""
    spec = get_backend(backend)
    check_precision(backend, options.precision)  # a backend chosen here (no --backend) too
    check_mode(backend, options.mode)
    avail = spec.probe()  # a missing runtime or GPU is a usage error with its hint, not a crash
    if not avail.available:
        raise UsageError(f"--backend {backend} is not available here: {avail.reason}; see `effconv backends`")
    if spec.kind == "onnx":
        if model.onnx_path is None:
            raise UsageError(f"backend {backend} needs an ONNX model")
        return spec.make(model.onnx_path, options, mode=options.mode)
    if model.build is None:
        raise UsageError(f"backend {backend} needs a torch model (a zoo name, spec or run), not an ONNX file")
    return spec.make(model.build, model.input_shape, options, mode=options.mode)


def measure(model: ModelInput, options: LatencyOptions, profile=None, *, build_profile: bool = False) -> LatencyReport:
    """Time `model` with `options`. Its ONNX file's input shapes are resolved first (--batch and
    --input-shape against the declared dims: effconv.latency.shapes), before anything is loaded;
    `build_profile`: with no `profile`, also build the static profile at those shapes."""
    backend = options.backend or best_backend(model.kind, options.mode)
    options = replace(options, backend=backend)
    if model.onnx_path is not None:
        options = replace(options, input_shapes=resolve_input_shapes(model.onnx_path, options.batch, options.input_shapes))
    if build_profile and profile is None:
        profile = static_profile(model, options)
    phases = PhaseMemory()  # measured memory: session creation, then the timed run
    reset_torch_cuda_peak(backend)
    runner = build_runner(backend, model, options)
    runner.prepare()
    phases.mark("session")
    # the timed run, no instrumentation: one request at a time, or `streams` in flight
    timing = time_runner(runner, options) if options.mode == "latency" else time_load(runner, options)
    phases.mark("run")
    memory = {**phases.to_dict(), **torch_cuda_peak(backend)}
    env = {**host_environment(), **runner.environment(), "measured_memory": memory, "backend": backend,
           "precision": options.precision, "mode": options.mode,
           "batch": options.batch, "include_copies": options.include_copies, "cuda_graph": options.cuda_graph,
           "timer": timing.timer, "warmup_ms": options.warmup_ms, "warmup_iterations": timing.warmup_iterations}
    from effconv.latency.onnxgraph import load_onnx_graph

    graph = load_onnx_graph(model.onnx_path, options.batch, options.input_shapes) if model.onnx_path is not None else None
    layerwise = None
    if options.per_layer != "none" and options.mode == "latency":
        ctx = LayerwiseContext(backend, options, model.onnx_path, graph, model.build, model.input_shape, runner)
        layerwise = measure_layers(options.per_layer, ctx)
    types_of, by_type, notes = per_type(layerwise, graph, profile, options)
    if timing.stats.warning:
        notes = (timing.stats.warning, *notes)
    return LatencyReport(model.name, backend, options.precision, options.batch, timing, env, layerwise,
                         by_type, types_of, options.device_profile, notes, profile)


def per_type(layerwise, graph: OnnxGraph | None, profile, options: LatencyOptions):
    if layerwise is None:
        return {}, (), ()
    costs = {lc.name: lc for lc in profile.layers} if profile is not None else {}
    total_macs = profile.totals.mult_adds if profile is not None else None
    device = load_device_profile(options.device_profile) if options.device_profile else None
    acc: dict[str, dict[str, Any]] = {}
    types_of = {}
    for lt, owned in zip(layerwise.layers, _owned_nodes(layerwise.layers)):
        kind = costs[lt.name].type if lt.name in costs else lt.op_type
        types_of[lt.name] = kind
        row = acc.setdefault(kind, {"ms": 0.0, "n": 0, "macs": 0, "bytes": 0})
        row["ms"] += lt.ms
        row["n"] += 1
        row["macs"] += sum(costs[n].mult_adds for n in owned if n in costs)
        row["bytes"] += graph.bytes_moved(owned, options.precision) if graph is not None and owned else 0
    rows = [_type_row(k, r, layerwise.sum_ms, total_macs, device, options.precision, bool(costs))
            for k, r in acc.items()]
    rows.sort(key=lambda r: -r.ms)
    notes = () if costs else ("no static profile: Mult-Adds, GMAC/s and roofline columns are empty",)
    return types_of, tuple(rows), notes + _roofline_notes(rows, options.device_profile)


def _owned_nodes(layers) -> list[tuple[str, ...]]:
    """Each ONNX node's cost goes to exactly one per-layer row. A runtime's rows can share nodes
    (ORT reports a fused Conv and then the Add+Relu after it as a group that reaches back to the
    same Conv), and summing every row's nodes counted that Conv's Mult-Adds three times (ResNet-20:
    "Conv 3x3 169.82% of Mult-Adds"). A node belongs to the row named after it, else to the first
    row that lists it."""
    owner = {lt.name: i for i, lt in enumerate(layers) if lt.name in lt.nodes}
    for i, lt in enumerate(layers):
        for node in lt.nodes:
            owner.setdefault(node, i)
    return [tuple(n for n in lt.nodes if owner[n] == i) for i, lt in enumerate(layers)]


def _roofline_notes(rows, device_profile: str | None) -> tuple[str, ...]:
    """A layer type above 100% of its roofline ran faster than the device profile allows: say so."""
    over = [f"{r.type} {r.pct_of_roofline:.1f}%" for r in rows if r.pct_of_roofline is not None and r.pct_of_roofline > 100]
    if not over:
        return ()
    return (f"above 100% of the {device_profile} roofline ({', '.join(over)}): impossible if the profile's peaks were "
            "this machine's; its figures are too low for it (measure them: effconv device calibrate), or the bytes "
            "moved are overcounted where caches reuse data",)


def _type_row(kind, r, sum_ms, total_macs, device, precision, have_costs) -> TypeLatency:
    macs = r["macs"] if have_costs else None
    point = roofline(macs, r["bytes"], r["ms"], device, precision) if device and macs is not None and r["bytes"] else None
    return TypeLatency(
        type=kind, ms=r["ms"], pct=100.0 * r["ms"] / sum_ms if sum_ms else 0.0, layers=r["n"], mult_adds=macs,
        mult_adds_pct=100.0 * macs / total_macs if macs is not None and total_macs else None,
        gmacs=macs / (r["ms"] / 1e3) / 1e9 if macs is not None and r["ms"] > 0 else None,
        intensity=2.0 * macs / r["bytes"] if macs is not None and r["bytes"] else None,
        bound=point.bound if point else None, pct_of_roofline=point.pct_of_roofline if point else None,
    )


def static_profile(model: ModelInput, options: LatencyOptions):
    """The static profile of the ONNX file at the shapes it is timed at (`options.input_shapes`,
    when set), or None (a torch-only run, or no effconv.profile)."""
    if model.onnx_path is None:
        return None
    try:
        from effconv.profile import profile_onnx
    except ImportError:
        return None
    if options.input_shapes:
        return profile_onnx(model.onnx_path, model=model.name, input_shapes=dict(options.input_shapes))
    try:
        return profile_onnx(model.onnx_path, model=model.name)
    except EffconvError:  # a symbolic batch: profile at the timed batch
        return profile_onnx(model.onnx_path, model=model.name, batch=options.batch)
