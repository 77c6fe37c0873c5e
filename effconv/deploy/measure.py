"""One cell of the deployment matrix measured: its file timed on its backend (effconv.latency's
measure_model, in a limited child, no per-layer pass), sized, and its answers on the accuracy
images computed by the cell's own runtime (effconv.deploy.evaluate)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from effconv.deploy.files import Files
from effconv.deploy.plan import DeployOptions
from effconv.deploy.result import Cell
from effconv.errors import EffconvError, UsageError

def timed_cell(files: Files, backend: str, precision: str, options: DeployOptions, shapes=None) -> Cell:
    """One cell timed; `shapes`: the resolved --input-shape (deploy.plan.input_shapes), else the file's."""
    from effconv.latency import LatencyOptions
    from effconv.latency import measure_model

    path = files.int8 if precision == "int8" else files.fp32
    if path is None:
        return Cell(backend, precision, "skipped", files.int8_reason or "no int8 file")
    try:
        lat = LatencyOptions(backend=backend, batch=options.batch, precision="fp32" if precision == "int8" else precision,
                             warmup_ms=options.warmup_ms, duration_s=options.duration_s, iterations=options.iterations,
                             per_layer="none", threads=options.threads, input_shapes=shapes)
        report = measure_model(path, lat, isolate=True, limits=options.limits)
    except UsageError as exc:  # the backend does not run this precision (or this file)
        return Cell(backend, precision, "skipped", str(exc), file=path.name)
    except EffconvError as exc:  # it crashed or refused the file: the rest of the matrix still runs
        return Cell(backend, precision, "failed", str(exc), file=path.name)
    stats, totals = report.timing.stats, report.profile.totals if report.profile is not None else None
    return Cell(backend, precision, "ok", file=path.name, ran=_ran(report.environment, precision),
                median_ms=stats.median_ms, p99_ms=stats.p99_ms, mean_ms=stats.mean_ms, cv=stats.cv,
                iterations=stats.iterations, throughput=stats.throughput, file_bytes=_file_bytes(path),
                weight_bytes=sum(totals.weight_bytes.values()) if totals else None,
                mult_adds=totals.mult_adds if totals else None, runtime=str(report.environment.get("runtime", "")))


def _ran(env, precision: str) -> str:
    """What the runtime says it ran (a backend that records it, e.g. OpenVINO's resolved hint)."""
    for key in ("inference_precision", "precision_ran", "execution_precision"):
        if env.get(key):
            value = str(env[key])
            return f"int8 QDQ + {value}" if precision == "int8" else value
    return "int8 QDQ + fp32" if precision == "int8" else precision


def _file_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def with_predictions(cell: Cell, files: Files, images, labels, options: DeployOptions) -> Cell:
    from effconv.deploy.evaluate import evaluate

    path = files.int8 if cell.precision == "int8" else files.fp32
    try:
        preds, on = evaluate(cell.backend, path, cell.precision, images, options.limits)
    except EffconvError as exc:
        return replace(cell, reason=f"accuracy not measured: {exc}"), None
    acc = float(np.mean(preds == labels)) if labels is not None else None
    return replace(cell, accuracy=acc, accuracy_on=on), preds
