"""`effconv latency`, `effconv backends`, `effconv device calibrate|list`: parse, call one library
function, render. No torch or onnxruntime at import: both are imported inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import CsvOut, JsonOut, Quiet, app, console
from effconv.cli.options import (
    Backend, Batch, BudgetMs, CudaGraph, DeviceProfile, DurationS, IncludeCopies, Isolate, Iterations, LatencyPlot,
    MemLimitMb, OvDevice, PerLayer, Precision, Threads, TimeoutS, TorchMode, WarmupMs, latency_options,
    sandbox_limits,
)
from effconv.latency.backends import mode_help  # light: the descriptors, no runtime
from effconv.sandbox.limits import DEFAULT_MEM_LIMIT_MB, DEFAULT_TIMEOUT_S

device_app = typer.Typer(help="Device ceilings for the roofline: list the profiles, calibrate this machine.",
                         no_args_is_help=True)
app.add_typer(device_app, name="device")

Mode = Annotated[str, typer.Option("--mode", rich_help_panel="Latency", help=mode_help())]
Streams = Annotated[
    Optional[int],
    typer.Option("--streams", rich_help_panel="Latency", show_default=False,
                 help="--mode throughput: requests in flight (default: ort-cpu one single-threaded session per CPU; "
                      "openvino the THROUGHPUT hint's optimal number of requests); --threads is split between them."),
]
InputShape = Annotated[
    Optional[list[str]],
    typer.Option("--input-shape", show_default=False,
                 help="Set an ONNX input's symbolic dims: NAME=1x3x224x224 (repeatable); static dims must match. "
                      "Its first dim is the batch unless --batch is given."),
]


@app.command("backends")
def backends_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the latency backends: available or not, version, and why not.

    Example: effconv backends --json
    """
    from effconv.latency.backends import BACKENDS
    from effconv.tables import Table, show

    rows = []
    for name, backend in BACKENDS.items():
        a = backend.probe()
        rows.append({"name": name, "available": a.available, "version": a.version, "reason": a.reason,
                     "device": backend.device, "model": backend.kind, "description": backend.description,
                     "per_layer": backend.per_layer, "modes": list(backend.modes()), "extra": backend.extra})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("Latency backends", [(c, "left") for c in ("Backend", "Available", "Version", "Runs", "What",
                                                             "Per layer", "Modes", "Extra", "Why not")])
    for r in rows:
        table.add_row(r["name"], "yes" if r["available"] else "no", r["version"] or "-",
                      f"{r['model']} on {r['device']}", r["description"], r["per_layer"], ", ".join(r["modes"]),
                      r["extra"] or "-",
                      r["reason"] or "")
    show([table], console)


@device_app.command("list")
def device_list() -> None:
    """List the device profiles (peak FLOP/s per precision, memory bandwidth, source).

    Example: effconv device list
    """
    from effconv.latency.roofline import list_device_names, load_device_profile
    from effconv.tables import Table, show

    table = Table("Device profiles (dense peaks)",
                  [(c, "right" if c == "GB/s" else "left") for c in ("Name", "Description", "Peak TFLOP/s", "GB/s", "Source")])
    for name in list_device_names():
        p = load_device_profile(name)
        peaks = ", ".join(f"{k} {v / 1e12:g}" for k, v in p.peak_flops.items())
        table.add_row(name, p.description, peaks, f"{p.memory_bandwidth / 1e9:g}", p.source)
    show([table], console)


@device_app.command("calibrate")
def device_calibrate(
    out: Annotated[Path, typer.Option("--out", "-o", help="TOML file to write.", dir_okay=False)] = Path("local-cpu.toml"),
    name: Annotated[str, typer.Option("--name", help="Profile name written into the file.")] = "local-cpu",
    matmul_n: Annotated[int, typer.Option("--matmul-n", min=64, help="Matrix size for the FLOP/s test.")] = 2048,
    copy_mib: Annotated[int, typer.Option("--copy-mib", min=1, help="Array size (MiB) for the bandwidth test.")] = 256,
    quiet: Quiet = False,
) -> None:
    """Measure this machine's fp32 FLOP/s (numpy matmul) and memory bandwidth (array copy) and
    write a device profile usable with --device-profile PATH.

    Example: effconv device calibrate --out profiles/devices/my-laptop.toml --name my-laptop
    """
    from effconv.latency.devices import calibrate, write_calibration

    cal = calibrate(matmul_n=matmul_n, copy_mib=copy_mib)
    write_calibration(cal, out, name)
    if not quiet:
        console.print(f"{cal.device}: fp32 {cal.flops_fp32 / 1e9:.1f} GFLOP/s, memory {cal.bandwidth / 1e9:.1f} GB/s "
                      f"-> {out}", highlight=False)


@app.command("latency")
def latency_cmd(
    model: Annotated[str, typer.Argument(help="ONNX file, zoo model name, spec .toml, or training run.")],
    input_shape: InputShape = None, batch: Batch = None,
    backend: Backend = None, precision: Precision = "fp32", ov_device: OvDevice = None,
    mode: Mode = "latency", streams: Streams = None,
    warmup_ms: WarmupMs = 200.0, duration_s: DurationS = 1.0, iterations: Iterations = 20, threads: Threads = None,
    include_copies: IncludeCopies = False, cuda_graph: CudaGraph = False, torch_mode: TorchMode = "eager",
    per_layer: PerLayer = "auto", device_profile: DeviceProfile = None, budget_ms: BudgetMs = None,
    json_out: JsonOut = None, csv_out: CsvOut = None, plot: LatencyPlot = None,
    isolate: Isolate = None, mem_limit_mb: MemLimitMb = DEFAULT_MEM_LIMIT_MB, timeout_s: TimeoutS = DEFAULT_TIMEOUT_S,
    quiet: Quiet = False,
) -> None:
    """Time a model end to end (one timing loop for every backend), then per layer in a separate
    run; join the per-type times with the static Mult-Adds and a device roofline. --mode throughput
    keeps --streams requests in flight instead. ONNX files are parsed and timed in a child process
    with --mem-limit-mb and --timeout-s limits (a crash there is exit 5, a limit exit 4).

    Example: effconv latency mobilenet_v1 --backend ort-cpu --threads 2 --device-profile local-cpu.toml --budget-ms 50
    (throughput: effconv latency model.onnx --backend openvino --mode throughput --streams 4 --csv t.csv)
    """
    from effconv.latency.api import check_budget, measure_model
    from effconv.latency.render import check_outputs, render_latency, write_outputs
    from effconv.latency.shapes import timed_batch

    shapes = _shapes(input_shape)
    options = latency_options(
        timed_batch(batch, shapes), input_shapes=shapes, backend=backend, precision=precision, mode=mode,
        streams=streams, warmup_ms=warmup_ms, duration_s=duration_s, iterations=iterations, threads=threads,
        include_copies=include_copies, cuda_graph=cuda_graph, per_layer=per_layer, device_profile=device_profile,
        torch_mode=torch_mode, budget_ms=budget_ms, ov_device=ov_device,
    )
    check_outputs(options, plot=plot)  # before any timing
    report = measure_model(model, options, isolate=isolate, limits=sandbox_limits(mem_limit_mb, timeout_s))
    if not quiet:
        render_latency(report, console)
    write_outputs(report, json_out=json_out, csv_out=csv_out, plot=plot)
    check_budget(report, budget_ms)


def _shapes(items: list[str] | None):
    """--input-shape values as ((name, dims), ...), parsed as `effconv profile` parses them."""
    from effconv.profile.model import parse_input_shape

    return tuple(parse_input_shape(s) for s in items) if items else None
