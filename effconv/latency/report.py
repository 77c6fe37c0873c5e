"""The latency report as data: what one measurement found (LatencyReport, TypeLatency), in and out
of its JSON document (`to_dict` / `from_dict`: an isolated child sends the document, the parent
rebuilds the report), and why a per-layer sum may differ from the end-to-end median. Measuring is
effconv.latency.measure; the entry points are effconv.latency.api."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from effconv.errors import InvalidInputError
from effconv.latency.base import Statistics, Timing
from effconv.latency.layerwise.common import LayerTime, LayerwiseResult
from effconv.latency.throughput import Load

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
    def mode(self) -> str:
        return "latency" if self.timing.load is None else "throughput"

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
        load = Load.from_dict(doc["load"]) if doc.get("load") else None
        timing = Timing(tuple(samples_ms or ()), env.get("warmup_iterations", 0), Statistics(**doc["statistics"]),
                        doc["timer"], load)
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
