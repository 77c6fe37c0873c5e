"""Options shared by `effconv latency` and `effconv profile`, declared once as Annotated aliases.

Defaults live in each command's signature (profile times for less long than latency does), so an
alias carries only the flag and its help text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.latency.backends import backend_help, per_layer_help  # light: the descriptors, no runtime

Batch = Annotated[
    Optional[int],
    typer.Option("--batch", min=1, help="Batch size: the first dimension of every input (default: the model's, else 1)."),
]
Backend = Annotated[
    Optional[str],
    typer.Option("--backend", rich_help_panel="Latency", help=backend_help()),
]
Precision = Annotated[str, typer.Option("--precision", rich_help_panel="Latency",
                                        help="fp32, fp16 (CUDA backends) or bf16 (openvino, where the CPU has it); fp32 is "
                                             "forced, never left to the runtime (OpenVINO would run bf16).")]
OvDevice = Annotated[
    Optional[str], typer.Option("--ov-device", rich_help_panel="Latency",
                                help="OpenVINO device for --backend openvino: CPU (default), GPU or NPU when present.")
]
WarmupMs = Annotated[float, typer.Option("--warmup-ms", min=0, rich_help_panel="Latency", help="Warm-up length (ms).")]
DurationS = Annotated[float, typer.Option("--duration-s", min=0, rich_help_panel="Latency", help="Minimum timed duration (s); the per-layer run takes as long.")]
Iterations = Annotated[int, typer.Option("--iterations", min=1, rich_help_panel="Latency", help="Minimum timed iterations.")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, rich_help_panel="Latency", help="CPU intra-op threads (default: the runtime's).")]
IncludeCopies = Annotated[bool, typer.Option("--include-copies", rich_help_panel="Latency", help="Time host<->device copies too.")]
CudaGraph = Annotated[bool, typer.Option("--cuda-graph", rich_help_panel="Latency", help="Capture and replay a CUDA graph.")]
TorchMode = Annotated[str, typer.Option("--torch-mode", rich_help_panel="Latency", help="eager or compile (torch backends).")]
PerLayer = Annotated[
    str, typer.Option("--per-layer", rich_help_panel="Latency", help=per_layer_help())
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
    from effconv.latency.layerwise import check_method

    check_method(kwargs.get("per_layer", "auto"), kwargs.get("backend"))  # before any timing
    return LatencyOptions(batch=batch or 1, **kwargs)

# Sandbox: files from outside are parsed and timed in limited child processes (effconv.sandbox).
Isolate = Annotated[
    Optional[bool],
    typer.Option("--isolate/--no-isolate", show_default=False, rich_help_panel="Sandbox",
                 help="Parse and time the model in child processes with memory and time limits (default: ONNX "
                      "files yes; zoo models, runs and torch backends no): a native crash is exit 5, a limit exit 4."),
]
MemLimitMb = Annotated[
    int, typer.Option("--mem-limit-mb", min=0, rich_help_panel="Sandbox",
                      help="Address-space limit of each isolated child, MB (0: none); the latency run gets it on "
                           "CPU backends only, as CUDA reserves more virtual memory than it uses.")
]
TimeoutS = Annotated[
    float, typer.Option("--timeout-s", min=0, rich_help_panel="Sandbox",
                        help="Wall-clock limit of each isolated child, seconds (0: none); the latency run gets it "
                             "on top of its expected length (warm-up + duration per pass).")
]


def sandbox_limits(mem_limit_mb: int, timeout_s: float):
    """The CLI's --mem-limit-mb / --timeout-s (0: none) as effconv.sandbox.Limits."""
    from effconv.sandbox.limits import Limits

    return Limits(mem_limit_mb or None, timeout_s or None)

