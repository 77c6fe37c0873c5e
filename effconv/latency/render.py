"""A LatencyReport as JSON (the `latency` section), as tables (effconv.tables), and as a PNG comparing each
layer type's share of Mult-Adds with its share of measured latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effconv.io import save_png
from effconv.tables import Line, Table, show

LATENCY_SCHEMA_VERSION = 1


def report_dict(report) -> dict[str, Any]:
    lw = report.layerwise
    per_layer = None
    if lw is not None:
        per_layer = {
            "method": lw.method, "measures": lw.measures, "runs": lw.runs,
            "sum_ms": lw.sum_ms, "sum_ratio": report.sum_ratio, "gap_explanation": report.gap_explanation,
            "instrumented_ms": lw.instrumented_ms,
            "overhead_ratio": lw.instrumented_ms / report.median_ms if lw.instrumented_ms else None,
            "notes": list(lw.notes),
            "layers": [
                {"name": lt.name, "type": report.types_of.get(lt.name, lt.op_type), "op_type": lt.op_type,
                 "nodes": list(lt.nodes), "ms": lt.ms, "pct": 100.0 * lt.ms / lw.sum_ms if lw.sum_ms else 0.0}
                for lt in lw.layers
            ],
        }
    return {
        "schema_version": LATENCY_SCHEMA_VERSION,
        "model": report.model, "backend": report.backend, "precision": report.precision, "batch": report.batch,
        "timer": report.timing.timer, "mode": report.mode,
        "statistics": report.timing.stats.to_dict(),
        "load": report.timing.load.to_dict() if report.timing.load is not None else None,
        "environment": dict(report.environment),
        "per_layer": per_layer,
        "by_type": [dict(t.__dict__) for t in report.by_type],
        "device_profile": report.device_profile,
        "notes": list(report.notes),
    }


def _f(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_latency(report, console) -> None:
    """The latency section: statistics, environment, per-type table, method and notes, through
    effconv.tables.show (rich on a terminal, plain text when redirected)."""
    show(latency_items(report), console)


def latency_items(report) -> list:
    s, load = report.timing.stats, report.timing.load
    env = report.environment
    title = "End-to-end latency (ms)" if load is None else f"Latency at load (ms), {load.streams} requests in flight"
    stats = Table(title, [(c, "right") for c in ("min", "median", "mean", "p90", "p95", "p99", "CV", "items/s")])
    stats.add_row(*(f"{v:.3f}" for v in (s.min_ms, s.median_ms, s.mean_ms, s.p90_ms, s.p95_ms, s.p99_ms)),
                  f"{s.cv:.1%}", f"{s.throughput:.1f}")
    what = f"{s.iterations} iterations" if load is None else f"throughput mode, {s.iterations} requests"
    items = [
        Line(""),
        Line(f"{report.model} on {report.backend}, {report.precision}, batch {report.batch}; "
             f"{what}, timer: {report.timing.timer}", "bold"),
        stats,
        *([] if load is None else [Line(_load_line(load), "bold")]),
        Line(f"device: {env.get('device', env.get('host_cpu'))}; driver: {env.get('driver', '-')}; "
             f"runtime: {env.get('runtime')}; threads: {env.get('intra_op_threads', '-')}; "
             f"copies included: {env.get('include_copies')}; CUDA graph: {env.get('cuda_graph')}"),
    ]
    if env.get("inference_precision"):  # what the runtime really ran, beside what was asked for
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted((env.get("exec_types") or {}).items()))
        items.append(Line(f"ran: inference precision {env['inference_precision']} (asked: {env.get('precision_requested')}); "
                          f"streams: {env.get('streams')}; hint: {env.get('performance_hint')}; kernels: {kinds or '-'}"))
    mem = _memory_line(report)
    if mem:
        items.append(Line(mem))
    if report.layerwise is not None:
        items += _type_items(report)
    return items + [Line(f"note: {note}", "yellow") for note in report.notes]


def _load_line(load) -> str:
    return (f"throughput: {load.inferences_per_s:.1f} inferences/s ({load.items_per_s:.1f} items/s) with {load.streams} "
            f"requests in flight, {load.completed} completed in a {load.window_s:.3f} s window (per stream: "
            f"{', '.join(map(str, load.per_stream))}); {load.finished} of {load.issued} issued requests completed, "
            f"{load.warmup_requests} in the warm-up")


CSV_COLUMNS = ("model", "backend", "precision", "batch", "mode", "streams", "iterations", "min_ms", "median_ms",
               "mean_ms", "p90_ms", "p95_ms", "p99_ms", "cv", "items_per_s", "inferences_per_s", "window_s",
               "intra_op_threads", "runtime")


def csv_text(report) -> str:
    """One header line and one row: the statistics, and in the throughput mode what the load gave."""
    import csv
    import io

    s, load, env = report.timing.stats, report.timing.load, report.environment
    row = {"model": report.model, "backend": report.backend, "precision": report.precision, "batch": report.batch,
           "mode": report.mode, "streams": load.streams if load else 1, "iterations": s.iterations,
           **{k: getattr(s, k) for k in ("min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms", "p99_ms", "cv")},
           "items_per_s": s.throughput, "inferences_per_s": load.inferences_per_s if load else s.throughput / report.batch,
           "window_s": load.window_s if load else s.total_s, "intra_op_threads": env.get("intra_op_threads"),
           "runtime": env.get("runtime")}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    return out.getvalue()


def _memory_line(report) -> str | None:
    """Measured memory beside the static estimate, each labelled with what it measures."""
    m = report.environment.get("measured_memory") or {}
    if not m.get("measured"):
        return f"measured memory: not measured ({m['why']})" if m.get("why") else None
    text = (f"measured memory: +{m['session_peak_growth_bytes'] / 1e6:.2f} MB creating the session, "
            f"+{m['run_peak_growth_bytes'] / 1e6:.2f} MB running (peak resident-set growth: arena and workspace included)")
    if "torch_cuda_max_allocated_bytes" in m:
        text += f"; torch CUDA peak allocated {m['torch_cuda_max_allocated_bytes'] / 1e6:.2f} MB"
    prof = getattr(report, "profile", None)
    mem = getattr(prof, "memory", None)
    if mem is not None:
        weights = sum(prof.totals.weight_bytes.values())
        text += (f"; static: parameters {weights / 1e6:.2f} MB, peak live activations {mem.peak_bytes / 1e6:.2f} MB "
                 f"at batch {report.batch}")
    return text


def _type_items(report) -> list:
    lw = report.layerwise
    table = Table(f"Latency per layer type ({lw.method})",
                  [(c, "left" if c == "Type" else "right")
                   for c in ("Type", "Layers", "ms", "% time", "% Mult-Adds", "GMAC/s", "FLOP/B", "Bound", "% roofline")])
    for t in report.by_type:
        table.add_row(t.type, str(t.layers), f"{t.ms:.3f}", f"{t.pct:.1f}", _f(t.mult_adds_pct, ".2f"),
                      _f(t.gmacs, ".1f"), _f(t.intensity, ".1f"), t.bound or "-", _f(t.pct_of_roofline, ".1f"))
    ratio = report.sum_ratio
    line = f"per-layer method: {lw.method} ({lw.measures}); sum {lw.sum_ms:.3f} ms = {ratio:.2f} x the end-to-end median"
    if lw.instrumented_ms:
        line += f"; instrumented run {lw.instrumented_ms:.3f} ms/inference ({lw.instrumented_ms / report.median_ms:.2f} x)"
    items = [table, Line(line)]
    if report.gap_explanation:
        items.append(Line(f"gap: {report.gap_explanation}", "yellow"))
    return items + [Line(f"note: {note}", "yellow") for note in lw.notes]


def check_outputs(options, *, plot=None) -> None:
    """UsageError, before any timing, for an output these options cannot produce."""
    from effconv.errors import UsageError

    if plot is not None and (options.per_layer == "none" or options.mode != "latency"):
        raise UsageError("--plot needs per-layer times: drop --per-layer none (and --mode throughput, "
                         "which runs no per-layer pass)")


def write_outputs(report, *, json_out=None, csv_out=None, plot=None) -> None:
    """The files `effconv latency` writes beside the tables: the JSON document (`{"latency": ...}`),
    the CSV summary row and the Mult-Adds vs latency plot; each written atomically."""
    import json

    from effconv.errors import UsageError
    from effconv.io import write_text

    if json_out is not None:
        write_text(json_out, json.dumps({"latency": report.to_dict()}, indent=2, default=str) + "\n")
    if csv_out is not None:
        write_text(csv_out, csv_text(report))
    if plot is not None:
        if report.layerwise is None or report.profile is None:
            raise UsageError("--plot needs per-layer times and a static profile (an ONNX backend, not --per-layer none)")
        plot_latency_vs_macs(report.profile, report, plot)


def plot_latency_vs_macs(profile, report, path: str | Path) -> Path:
    """Horizontal bars per layer type: share of Mult-Adds (static profile) beside share of latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    macs = {t.type: t.mult_adds_pct for t in profile.by_type}
    lat = {t.type: t.pct for t in report.by_type}
    types = sorted(set(macs) | set(lat), key=lambda k: -(lat.get(k, 0.0) + (macs.get(k) or 0.0)))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(types) + 1.5))
    ys = range(len(types))
    ax.barh([y - 0.2 for y in ys], [macs.get(k) or 0.0 for k in types], height=0.4, label="% Mult-Adds")
    ax.barh([y + 0.2 for y in ys], [lat.get(k, 0.0) for k in types], height=0.4, label=f"% latency ({report.backend})")
    ax.set_yticks(list(ys), types)
    ax.invert_yaxis()
    ax.set_xlabel("percent of model total")
    ax.set_title(f"{report.model}: Mult-Adds vs measured latency per layer type")
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path, dpi=120)
