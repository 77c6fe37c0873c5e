"""What a run's architecture costs: parameters and Mult-Adds from the profiler, latency from ONNX
Runtime. The model is rebuilt from the run's spec and width (latency does not depend on the trained
weights), so this lives beside the code that builds models, not in the run reader
(effconv.experiments.runs, which reads JSON and builds nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from effconv.experiments.runs import RunSummary


@dataclass(frozen=True)
class RunCosts:
    weights: int  # parameters in the paper's convention: weights only (no biases, no normalization)
    mult_adds: int  # per image (batch 1), paper convention: one fused multiply-add counts 1
    latency_ms: float | None  # median inference latency, batch 1, on `backend` (None: not measured)
    backend: str | None


def run_costs(run: RunSummary, *, latency: bool = True, duration_s: float = 0.5) -> RunCosts:
    """Profile the run's architecture (its spec, narrowed by its width multiplier) exported to ONNX
    at batch 1; optionally time it on ort-cpu (`duration_s` seconds, no per-layer run). Latency
    does not depend on the trained weights, so the model is rebuilt rather than loaded."""
    import tempfile

    from effconv.training.checkpoint import spec_from_dict
    from effconv.experiments.studies import build_run_model
    from effconv.export.onnx import export_onnx
    from effconv.profile import profile_onnx

    spec = spec_from_dict(run.spec)
    model = build_run_model(spec, run.width_mult, 0).eval()
    with tempfile.TemporaryDirectory(prefix="effconv-compare-") as tmp:
        path = export_onnx(model, Path(tmp) / f"{spec.name}.onnx", spec.input_shape(1))
        prof = profile_onnx(path, model=run.label)
        if not latency:
            return RunCosts(prof.totals.weights, prof.totals.mult_adds, None, None)
        from effconv.latency.base import LatencyOptions
        from effconv.latency.api import measure_profile_latency

        options = LatencyOptions(backend="ort-cpu", warmup_ms=100.0, duration_s=duration_s, iterations=10, per_layer="none")
        report = measure_profile_latency(prof, options)
        return RunCosts(prof.totals.weights, prof.totals.mult_adds, report.median_ms, report.backend)
