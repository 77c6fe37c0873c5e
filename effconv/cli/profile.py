"""`effconv profile` (per-layer Mult-Adds and parameters, then measured latency unless
--no-latency) and `effconv cost` (the paper's standard vs depthwise separable cost). No torch
unless a zoo model must be exported; no onnxruntime with --no-latency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import CsvOut, JsonOut, Quiet, app, console, stage
from effconv.cli.options import (
    Backend, Batch, BudgetMs, CudaGraph, DeviceProfile, DurationS, IncludeCopies, Isolate, Iterations, LatencyPlot,
    MemLimitMb, OvDevice, PerLayer, Precision, Threads, TimeoutS, TorchMode, WarmupMs, latency_options,
    sandbox_limits,
)
from effconv.errors import UsageError
from effconv.sandbox.limits import DEFAULT_MEM_LIMIT_MB, DEFAULT_TIMEOUT_S

DEFAULT_MODEL = "mobilenet_v1"
# Latency defaults for `effconv profile`: short enough that the default run (MobileNet v1 224 on
# 2 CPU cores: export, profile, timed run, per-layer run) stays near 10 s; `effconv latency` and
# --duration-s time for longer.
PROFILE_WARMUP_MS = 100.0
PROFILE_DURATION_S = 1.0
PROFILE_ITERATIONS = 10

Source = Annotated[
    Optional[str],
    typer.Argument(help="ONNX file, zoo model name or spec .toml (default: mobilenet_v1, 224x224).", show_default=False),
]
InputShape = Annotated[
    Optional[list[str]],
    typer.Option("--input-shape", help="Set an input's shape: NAME=1x3x224x224 (repeatable).", show_default=False),
]
Convention = Annotated[
    str, typer.Option("--convention", help="paper: Conv/ConvTranspose/Gemm/MatMul only; all: every op.")
]
Strict = Annotated[bool, typer.Option("--strict", help="Unsupported op types are an error (exit 3).")]
MarkdownOut = Annotated[Optional[Path], typer.Option("--markdown", help="Also write Markdown here.", dir_okay=False)]
PlotOut = Annotated[
    Optional[Path],
    typer.Option("--plot", help="Also write a PNG bar chart here (and, with latency, <stem>-latency.png).", dir_okay=False),
]
Layers = Annotated[bool, typer.Option("--layers/--no-layers", help="Print the per-layer table.")]
AllLayers = Annotated[bool, typer.Option("--all-layers", help="Per-layer table: also zero-cost nodes.")]
Top = Annotated[int, typer.Option("--top", min=0, help="Per-layer table: the N costliest layers (0: all).")]
Crosscheck = Annotated[bool, typer.Option("--crosscheck", help="Zoo models: compare with fvcore (exit 1 if they differ).")]
Latency = Annotated[
    bool, typer.Option("--latency/--no-latency", help="Also measure latency (end to end, then per layer); --no-latency: static only.")
]
Memory = Annotated[bool, typer.Option("--memory", help="Also print the memory tables (live activations per layer, bytes per type).")]
MemoryPlot = Annotated[
    Optional[Path], typer.Option("--memory-plot", help="Also write the PNG memory timeline (live activations per node).", dir_okay=False)
]
RamBudgetMb = Annotated[Optional[float], typer.Option("--ram-budget-mb", help="Exit 1 when the peak live activations exceed this (MB).")]
FlashBudgetMb = Annotated[Optional[float], typer.Option("--flash-budget-mb", help="Exit 1 when the parameters' bytes exceed this (MB).")]


def _shapes(items: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    from effconv.profile.model import parse_input_shape

    return dict(parse_input_shape(s) for s in items) if items else None


@app.command("profile")
def profile_cmd(
    source: Source = None,
    input_shape: InputShape = None,
    batch: Batch = None,
    convention: Convention = "paper",
    strict: Strict = False,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    markdown: MarkdownOut = None,
    plot: PlotOut = None,
    layers: Layers = True,
    all_layers: AllLayers = False,
    top: Top = 40,
    crosscheck: Crosscheck = False,
    memory: Memory = False,
    memory_plot: MemoryPlot = None,
    ram_budget_mb: RamBudgetMb = None,
    flash_budget_mb: FlashBudgetMb = None,
    latency: Latency = True,
    backend: Backend = None,
    precision: Precision = "fp32",
    warmup_ms: WarmupMs = PROFILE_WARMUP_MS,
    duration_s: DurationS = PROFILE_DURATION_S,
    iterations: Iterations = PROFILE_ITERATIONS,
    threads: Threads = None,
    include_copies: IncludeCopies = False,
    cuda_graph: CudaGraph = False,
    torch_mode: TorchMode = "eager",
    per_layer: PerLayer = "auto",
    ov_device: OvDevice = None,
    device_profile: DeviceProfile = None,
    budget_ms: BudgetMs = None,
    latency_plot: LatencyPlot = None,
    isolate: Isolate = None,
    mem_limit_mb: MemLimitMb = DEFAULT_MEM_LIMIT_MB,
    timeout_s: TimeoutS = DEFAULT_TIMEOUT_S,
    quiet: Quiet = False,
) -> None:
    """Per-layer Mult-Adds and parameters of an ONNX model by layer type, then its measured latency.

    One fused multiply-add counts 1. Latency runs on the best available backend (or --backend):
    end to end, then per layer type beside each type's Mult-Adds share; --no-latency keeps the
    profile static. ONNX files are parsed and timed in child processes with --mem-limit-mb and
    --timeout-s limits (a crash there is exit 5, a limit exit 4); zoo models, exported by effconv,
    in-process.

    Example: [bold]effconv profile model.onnx --backend ort-cuda --batch 8 --precision fp16 --json p.json[/]
    (static only: [bold]effconv profile model.onnx --no-latency[/]; zoo: [bold]effconv profile mobilenet_v1 --crosscheck[/]).
    """
    from effconv.profile.api import ProfileRequest, enforce, run_profile
    from effconv.profile.report import render_profile, write_reports
    from effconv.tables import warm_up

    options = None
    if latency:
        options = latency_options(
            batch, backend=backend, precision=precision, warmup_ms=warmup_ms, duration_s=duration_s,
            iterations=iterations, include_copies=include_copies, cuda_graph=cuda_graph, per_layer=per_layer,
            device_profile=device_profile, threads=threads, torch_mode=torch_mode, budget_ms=budget_ms,
            ov_device=ov_device,
        )
    elif budget_ms is not None or latency_plot is not None:
        raise UsageError("--budget-ms and --latency-plot need the latency run; drop --no-latency")
    request = ProfileRequest(source or DEFAULT_MODEL, _shapes(input_shape), batch, convention, strict, crosscheck,
                             options, isolate, sandbox_limits(mem_limit_mb, timeout_s))
    if not quiet:
        warm_up(console)  # on a terminal: rich loads here while the sandbox worker imports onnx
    shown = None if quiet else (lambda p: render_profile(console, p, layers=layers, all_layers=all_layers, top=top,
                                                         memory=memory))
    run = run_profile(request, on_profile=shown, stage=stage)
    if run.latency is not None and not quiet:
        from effconv.latency.render import render_latency

        render_latency(run.latency, console)
    write_reports(run.profile, json_path=json_out, csv_path=csv_out, markdown_path=markdown, plot_path=plot,
                  latency=run.latency.to_dict() if run.latency is not None else None, memory_plot_path=memory_plot)
    if run.latency is not None:
        _latency_plot(run.profile, run.latency, latency_plot or _derived_plot(plot), explicit=latency_plot is not None)
    if run.crosscheck is not None and not quiet:
        from effconv.profile.report import crosscheck_table
        from effconv.tables import show

        show([crosscheck_table(run.crosscheck)], console)
    enforce(run, budget_ms=budget_ms, ram_budget_mb=ram_budget_mb, flash_budget_mb=flash_budget_mb)


def _derived_plot(plot: Path | None) -> Path | None:
    return plot.with_name(f"{plot.stem}-latency.png") if plot is not None else None


def _latency_plot(prof, report, path: Path | None, explicit: bool) -> None:
    if path is None:
        return
    if report.layerwise is None:
        if explicit:
            raise UsageError("--latency-plot needs per-layer times (drop --per-layer none)")
        return
    from effconv.latency.render import plot_latency_vs_macs

    plot_latency_vs_macs(prof, report, path)


@app.command("cost")
def cost_cmd(
    f: Annotated[int, typer.Argument(help="F: feature map size (F x F outputs).", min=1)],
    n: Annotated[int, typer.Argument(help="N: input channels.", min=1)],
    m: Annotated[int, typer.Argument(help="M: output channels.", min=1)],
    k: Annotated[int, typer.Argument(help="K: kernel size (K x K).", min=1)],
) -> None:
    """The paper's cost of one layer: standard F^2 N K^2 M against depthwise separable
    F^2 N K^2 + F^2 N M, and their ratio 1/M + 1/K^2 (one fused multiply-add = 1).

    Example: [bold]effconv cost 14 512 512 3[/]
    """
    from effconv.profile.costmodel import separable_cost
    from effconv.tables import Line, Table, show

    c = separable_cost(f, n, m, k)
    t = Table(f"F={f} N={n} M={m} K={k}", [(col, "right" if col in ("Mult-Adds", "Weights") else "left")
                                          for col in ("Layer", "Formula", "Mult-Adds", "Weights")])
    t.add_row("standard", "F^2 N K^2 M", f"{c.standard:,}", f"{c.standard_weights:,}")
    t.add_row("depthwise", "F^2 N K^2", f"{c.depthwise:,}", f"{k * k * n:,}")
    t.add_row("pointwise", "F^2 N M", f"{c.pointwise:,}", f"{n * m:,}")
    t.add_row("separable", "F^2 N K^2 + F^2 N M", f"{c.separable:,}", f"{c.separable_weights:,}")
    show([t, Line(f"separable / standard = {c.ratio:.6f} = 1/M + 1/K^2 = {c.ratio_closed_form:.6f} "
                  f"({1 / c.ratio:.2f}x fewer Mult-Adds)")], console)
