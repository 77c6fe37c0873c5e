"""Options shared by `effconv latency` and `effconv profile`, declared once as Annotated aliases.

Defaults live in each command's signature (profile times for less long than latency does), so an
alias carries only the flag and its help text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Batch = Annotated[
    Optional[int],
    typer.Option("--batch", min=1, help="Batch size: the first dimension of every input (default: the model's, else 1)."),
]
Backend = Annotated[
    Optional[str],
    typer.Option("--backend", rich_help_panel="Latency", help="ort-cpu, ort-cuda, ort-tensorrt, tensorrt, torch-cpu, torch-cuda; default: the best available."),
]
Precision = Annotated[str, typer.Option("--precision", rich_help_panel="Latency", help="fp32 or fp16 (fp16 on CUDA backends).")]
WarmupMs = Annotated[float, typer.Option("--warmup-ms", min=0, rich_help_panel="Latency", help="Warm-up length (ms).")]
DurationS = Annotated[float, typer.Option("--duration-s", min=0, rich_help_panel="Latency", help="Minimum timed duration (s); the per-layer run takes as long.")]
Iterations = Annotated[int, typer.Option("--iterations", min=1, rich_help_panel="Latency", help="Minimum timed iterations.")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, rich_help_panel="Latency", help="CPU intra-op threads (default: the runtime's).")]
IncludeCopies = Annotated[bool, typer.Option("--include-copies", rich_help_panel="Latency", help="Time host<->device copies too.")]
CudaGraph = Annotated[bool, typer.Option("--cuda-graph", rich_help_panel="Latency", help="Capture and replay a CUDA graph.")]
TorchMode = Annotated[str, typer.Option("--torch-mode", rich_help_panel="Latency", help="eager or compile (torch backends).")]
PerLayer = Annotated[
    str, typer.Option("--per-layer", rich_help_panel="Latency", help="auto, none, ort-profiler, torch-profiler, tensorrt-profiler, isolate.")
]
DeviceProfile = Annotated[
    Optional[str], typer.Option("--device-profile", rich_help_panel="Latency", help="Roofline device: a name from `effconv device list` or a .toml.")
]
BudgetMs = Annotated[Optional[float], typer.Option("--budget-ms", rich_help_panel="Latency", help="Exit 1 when the median latency exceeds this (ms).")]
LatencyPlot = Annotated[
    Optional[Path],
    typer.Option(rich_help_panel="Latency", help="PNG: each layer type's share of Mult-Adds beside its share of measured latency.", dir_okay=False),
]


def latency_options(batch: int | None, **kwargs):
    """A LatencyOptions from the shared options (batch None: 1); raises UsageError on bad values."""
    from effconv.latency.base import LatencyOptions

    return LatencyOptions(batch=batch or 1, **kwargs)
