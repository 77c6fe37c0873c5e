"""Measure a model end to end, then per layer in a separate run, and join the two with the static
profile (Mult-Adds per layer type) and a device roofline. Entry points:

- `measure_model(source, options)`: `effconv latency MODEL` (an ONNX file, zoo name, spec, run).
- `measure_profile_latency(profile, options)`: what `effconv profile --latency` calls.
- `check_budget(report, budget_ms)`: raises CheckFailedError (exit 1) when the median is over.

ONNX files from outside are timed in a limited child process (effconv.latency.isolated), which
sends the report back as its JSON document; `LatencyReport.from_dict` rebuilds it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effconv.errors import CheckFailedError, EffconvError, InvalidInputError, UsageError
from effconv.latency.backends import best_backend, get_backend
from effconv.latency.base import LatencyOptions, Statistics, Timing, host_environment, time_runner
from effconv.latency.layerwise import LayerTime, LayerwiseContext, LayerwiseResult, measure_layers
from effconv.latency.roofline import load_device_profile, roofline
from effconv.latency.source import ModelInput, model_input
from effconv.sandbox import Limits

if TYPE_CHECKING:  # onnx is imported where a measurement runs, not in a CLI that renders a child's report
    from effconv.latency.onnxgraph import OnnxGraph

SUM_RATIO_BOUNDS = (0.75, 1.25)  # per-layer sum / end-to-end median judged "consistent" inside these


@dataclass(frozen=True)
class TypeLatency:
    type: str
    ms: float  # per inference
    pct: float  # of the per-layer sum
    layers: int
    mult_adds: int | None  # None when the per-layer method cannot map times to ONNX nodes
    mult_adds_pct: float | None
    gmacs: float | None  # achieved 1e9 Mult-Adds per second
    intensity: float | None  # FLOP per byte moved
    bound: str | None  # "memory" | "compute" against the device profile
    pct_of_roofline: float | None


@dataclass(frozen=True)
class LatencyReport:
    model: str
    backend: str
    precision: str
    batch: int
    timing: Timing
    environment: Mapping[str, Any]
    layerwise: LayerwiseResult | None
    by_type: tuple[TypeLatency, ...]
    types_of: Mapping[str, str]  # per-layer row name -> layer type
    device_profile: str | None
    notes: tuple[str, ...]
    profile: Any = None  # the static ModelProfile joined in, if any (not part of to_dict)

    @property
    def median_ms(self) -> float:
        return self.timing.stats.median_ms

    @property
    def sum_ratio(self) -> float | None:
        return self.layerwise.sum_ms / self.median_ms if self.layerwise else None

    @property
    def gap_explanation(self) -> str | None:
        return explain_gap(self.layerwise.method, self.sum_ratio) if self.layerwise else None

    def to_dict(self) -> dict[str, Any]:
        from effconv.latency.render import report_dict

        return report_dict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], profile=None, samples_ms=None) -> LatencyReport:
        """The report whose `to_dict()` is `doc` (e.g. sent by an isolated child). The raw samples
        are not in `doc`: pass them as `samples_ms` (else `timing.samples_ms` is empty)."""
        from effconv.latency.render import LATENCY_SCHEMA_VERSION

        if doc.get("schema_version") != LATENCY_SCHEMA_VERSION:
            raise InvalidInputError(f"latency document has schema_version {doc.get('schema_version')!r}, "
                                    f"expected {LATENCY_SCHEMA_VERSION}")
        env = dict(doc["environment"])
        timing = Timing(tuple(samples_ms or ()), env.get("warmup_iterations", 0), Statistics(**doc["statistics"]),
                        doc["timer"])
        per_layer = doc["per_layer"]
        layerwise = _layerwise_from_dict(per_layer) if per_layer is not None else None
        types_of = {row["name"]: row["type"] for row in per_layer["layers"]} if per_layer is not None else {}
        return cls(doc["model"], doc["backend"], doc["precision"], doc["batch"], timing, env, layerwise,
                   tuple(TypeLatency(**t) for t in doc["by_type"]), types_of, doc["device_profile"],
                   tuple(doc["notes"]), profile)


def _layerwise_from_dict(d: Mapping[str, Any]) -> LayerwiseResult:
    layers = tuple(LayerTime(row["name"], row["op_type"], tuple(row["nodes"]), row["ms"]) for row in d["layers"])
    return LayerwiseResult(d["method"], d["measures"], layers, d["sum_ms"], d["instrumented_ms"], d["runs"],
                           tuple(d["notes"]))


def explain_gap(method: str, ratio: float) -> str | None:
    """Why a per-layer sum can differ from the end-to-end median; None inside the bounds."""
    low, high = SUM_RATIO_BOUNDS
    if low <= ratio <= high:
        return None
    if method == "isolate":
        return ("isolated layers each pay a run's fixed cost (launch, input binding) and lose the cache "
                "reuse between neighbouring layers, so their sum overstates the whole model"
                if ratio > high else "isolated layers ran from warm caches and skip inter-node scheduling")
    if ratio < low:
        return (f"{method} times kernels only: the runtime's scheduling, allocation and thread wake-ups "
                "between nodes are in the end-to-end time but in no node")
    return f"{method} instrumentation slows each node; the per-layer sum exceeds the uninstrumented median"


def _build_runner(backend: str, model: ModelInput, options: LatencyOptions):
    spec = get_backend(backend)
    avail = spec.probe()  # a missing runtime or GPU is a usage error with its hint, not a crash
    if not avail.available:
        raise UsageError(f"--backend {backend} is not available here: {avail.reason}; see `effconv backends`")
    if spec.kind == "onnx":
        if model.onnx_path is None:
            raise UsageError(f"backend {backend} needs an ONNX model")
        return spec.make(model.onnx_path, options)
    if model.build is None:
        raise UsageError(f"backend {backend} needs a torch model (a zoo name, spec or run), not an ONNX file")
    return spec.make(model.build, model.input_shape, options)


def _measure(model: ModelInput, options: LatencyOptions, profile=None) -> LatencyReport:
    backend = options.backend or best_backend(model.kind)
    options = replace(options, backend=backend)
    runner = _build_runner(backend, model, options)
    runner.prepare()
    timing = time_runner(runner, options)  # the timed run: no instrumentation
    env = {**host_environment(), **runner.environment(), "backend": backend, "precision": options.precision,
           "batch": options.batch, "include_copies": options.include_copies, "cuda_graph": options.cuda_graph,
           "timer": timing.timer, "warmup_ms": options.warmup_ms, "warmup_iterations": timing.warmup_iterations}
    from effconv.latency.onnxgraph import load_onnx_graph

    graph = load_onnx_graph(model.onnx_path, options.batch) if model.onnx_path is not None else None
    layerwise = None
    if options.per_layer != "none":
        ctx = LayerwiseContext(backend, options, model.onnx_path, graph, model.build, model.input_shape, runner)
        layerwise = measure_layers(options.per_layer, ctx)
    types_of, by_type, notes = _per_type(layerwise, graph, profile, options)
    if timing.stats.warning:
        notes = (timing.stats.warning, *notes)
    return LatencyReport(model.name, backend, options.precision, options.batch, timing, env, layerwise,
                         by_type, types_of, options.device_profile, notes, profile)


def _per_type(layerwise, graph: OnnxGraph | None, profile, options: LatencyOptions):
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


def measure_model(source: str | Path, options: LatencyOptions, *, isolate: bool | None = None,
                  limits: Limits | None = None) -> LatencyReport:
    """Time an ONNX file, zoo model or run; the static profile is joined when it can be built.

    `isolate`: None times ONNX files from outside in a limited child process (`limits`, default
    `Limits()`; see effconv.latency.isolated) and zoo models or runs, which effconv exported itself,
    in this one; True isolates every ONNX-backend run; False none. Torch backends always run here:
    they time effconv's own module."""
    backend = options.backend
    need_onnx = backend is None or get_backend(backend).kind == "onnx"
    with model_input(source, options.batch, need_onnx=need_onnx) as model:
        if _in_child(model, options, model.build is None if isolate is None else isolate):
            from effconv.latency.isolated import measure_onnx_isolated

            return measure_onnx_isolated(model.onnx_path, model.name, options, limits=limits,
                                         input_shape=model.input_shape, static_profile=True)
        profile = _static_profile(model, options.batch)
        return _measure(model, options, profile)


def _in_child(model: ModelInput, options: LatencyOptions, isolate: bool) -> bool:
    """Isolate ONNX-backend runs only (no --backend: the best ONNX backend, chosen in the child)."""
    onnx_backend = options.backend is None or get_backend(options.backend).kind == "onnx"
    return isolate and onnx_backend and model.onnx_path is not None


def _static_profile(model: ModelInput, batch: int):
    """The static profile of the ONNX file, or None (a torch-only run, or no effconv.profile)."""
    if model.onnx_path is None:
        return None
    try:
        from effconv.profile import profile_onnx
    except ImportError:
        return None
    try:
        return profile_onnx(model.onnx_path, model=model.name)
    except EffconvError:  # a symbolic batch: profile at the timed batch
        return profile_onnx(model.onnx_path, model=model.name, batch=batch)


def measure_profile_latency(profile, options: LatencyOptions, build=None, *, isolate: bool | None = False,
                            limits: Limits | None = None) -> LatencyReport:
    """Latency for a `ModelProfile` (effconv.profile): times `profile.onnx_path`, or re-exports the
    zoo model `profile.model` when that temporary file is gone. `build` (returns the torch module
    the file was exported from) lets torch backends run too. `isolate`: True times the file with an
    ONNX backend in a limited child process (`limits`, default `Limits()`), None does so unless
    effconv exported the file itself (`profile.temporary_onnx`), False (default) never. Does not
    check the budget: render the report, then call `check_budget(report, options.budget_ms)`."""
    path = Path(profile.onnx_path)
    if path.is_file():
        shape = next(iter(profile.input_shapes.values()), None)
        model = ModelInput(profile.model, path, build, tuple(shape) if shape else None)
        if _in_child(model, options, not profile.temporary_onnx if isolate is None else isolate):
            from effconv.latency.isolated import measure_onnx_isolated

            return measure_onnx_isolated(path, profile.model, options, profile, limits,
                                         input_shape=model.input_shape)
        return _measure(model, options, profile)
    with model_input(profile.model, options.batch) as model:
        return _measure(model, options, profile)


def check_budget(report: LatencyReport, budget_ms: float | None) -> None:
    if budget_ms is not None and report.median_ms > budget_ms:
        raise CheckFailedError(
            f"{report.model}: median latency {report.median_ms:.3f} ms on {report.backend} exceeds the budget of {budget_ms:g} ms"
        )
