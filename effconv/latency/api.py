"""Latency's entry points (what the CLI and `effconv profile --latency` call):

- `measure_model(source, options)`: `effconv latency MODEL` (an ONNX file, zoo name, spec, run).
- `measure_profile_latency(profile, options)`: what `effconv profile --latency` calls.
- `check_budget(report, budget_ms)`: raises CheckFailedError (exit 1) when the median is over.

Each decides where the measurement runs: ONNX files from outside are timed in a limited child
process (effconv.latency.isolated), which sends the report back as its JSON document; effconv's
own models in this process (effconv.latency.measure).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from effconv.errors import CheckFailedError
from effconv.latency.backends import get_backend
from effconv.latency.base import LatencyOptions
from effconv.latency.measure import measure
from effconv.latency.report import LatencyReport
from effconv.latency.source import ModelInput, model_input
from effconv.sandbox.limits import Limits


def measure_model(source: str | Path, options: LatencyOptions, *, isolate: bool | None = None,
                  limits: Limits | None = None) -> LatencyReport:
    """Time an ONNX file, zoo model or run; the static profile is joined when it can be built.

    `isolate`: None times ONNX files from outside in a limited child process (`limits`, default
    `Limits()`; see effconv.latency.isolated) and zoo models or runs, which effconv exported itself,
    in this one; True isolates every ONNX-backend run; False none. Torch backends always run here:
    they time effconv's own module."""
    backend = options.backend
    need_onnx = backend is None or get_backend(backend).kind == "onnx"
    with model_input(source, options.batch, need_onnx=need_onnx, input_shapes=options.input_shapes) as model:
        if in_child(model, options, model.build is None if isolate is None else isolate):
            from effconv.latency.isolated import measure_onnx_isolated

            return measure_onnx_isolated(model.onnx_path, model.name, options, limits=limits,
                                         input_shape=model.input_shape, static_profile=True)
        return measure(model, options, build_profile=True)


def in_child(model: ModelInput, options: LatencyOptions, isolate: bool) -> bool:
    """Isolate ONNX-backend runs only (no --backend: the best ONNX backend, chosen in the child)."""
    onnx_backend = options.backend is None or get_backend(options.backend).kind == "onnx"
    return isolate and onnx_backend and model.onnx_path is not None


def measure_profile_latency(profile, options: LatencyOptions, build=None, *, isolate: bool | None = False,
                            limits: Limits | None = None) -> LatencyReport:
    """Latency for a `ModelProfile` (effconv.profile): times `profile.onnx_path`, or re-exports the
    zoo model `profile.model` when that temporary file is gone. `build` (returns the torch module
    the file was exported from) lets torch backends run too. `isolate`: True times the file with an
    ONNX backend in a limited child process (`limits`, default `Limits()`), None does so unless
    effconv exported the file itself (`profile.temporary_onnx`), False (default) never. Does not
    check the budget: render the report, then call `check_budget(report, options.budget_ms)`."""
    path = Path(profile.onnx_path)
    if options.input_shapes is None and profile.input_shapes:  # the shapes it was profiled at (--input-shape)
        options = replace(options, input_shapes=tuple((k, tuple(v)) for k, v in profile.input_shapes.items()))
    if path.is_file():
        shape = next(iter(profile.input_shapes.values()), None)
        model = ModelInput(profile.model, path, build, tuple(shape) if shape else None)
        if in_child(model, options, not profile.temporary_onnx if isolate is None else isolate):
            from effconv.latency.isolated import measure_onnx_isolated

            return measure_onnx_isolated(path, profile.model, options, profile, limits,
                                         input_shape=model.input_shape)
        return measure(model, options, profile)
    with model_input(profile.model, options.batch, input_shapes=options.input_shapes) as model:
        return measure(model, options, profile)


def check_budget(report: LatencyReport, budget_ms: float | None) -> None:
    if budget_ms is not None and report.median_ms > budget_ms:
        raise CheckFailedError(
            f"{report.model}: median latency {report.median_ms:.3f} ms on {report.backend} exceeds the budget of {budget_ms:g} ms"
        )
