"""What every per-layer method returns (LayerTime, LayerwiseResult), what it is given
(LayerwiseContext), and the profiled loop the runtime profilers share. Plain data and the standard
library only: the CLI process that renders a child's report imports this and nothing heavier."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effconv.latency.base import LatencyOptions

if TYPE_CHECKING:  # numpy and onnx are imported by the functions that measure
    from effconv.latency.onnxgraph import OnnxGraph


@dataclass(frozen=True)
class LayerTime:
    name: str  # the ONNX node that heads the fused group (or a torch module / runtime-inserted node)
    op_type: str
    nodes: tuple[str, ...]  # every ONNX node covered; empty for nodes the runtime inserted itself
    ms: float  # per inference


@dataclass(frozen=True)
class LayerwiseResult:
    method: str
    measures: str  # what the times are, in words
    layers: tuple[LayerTime, ...]
    sum_ms: float
    instrumented_ms: float | None  # median per-inference time of the instrumented run itself
    runs: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerwiseContext:
    backend: str
    options: LatencyOptions
    onnx_path: Path | None = None
    graph: OnnxGraph | None = None
    build: Callable[[], Any] | None = None  # torch backends: returns the nn.Module
    input_shape: tuple[int, ...] | None = None
    runner: Any = None  # a prepared runner (tensorrt-profiler reuses its engine)


# The per-layer pass stops after this many profiled runs (or --iterations, if more): a per-node
# median needs no more, and a profiler's trace grows with every run (ONNX Runtime's JSON trace of
# a 30 s run of a small model reached 6 GB of memory when parsed).
MAX_PROFILED_RUNS = 200


def profiled_runs(run: Callable[[], object], options: LatencyOptions,
                  after: Callable[[], object] | None = None) -> tuple[int, list[float]]:
    """Warm-up by time, then at least `iterations` runs and `duration_s`, at most
    max(iterations, MAX_PROFILED_RUNS) runs; host ms per timed run. `after` (e.g. reading a run's
    counters) is called after each timed run, outside its time."""
    warm, start = 0, time.perf_counter()
    while warm == 0 or (time.perf_counter() - start) * 1e3 < options.warmup_ms:
        run()
        warm += 1
    totals: list[float] = []
    start = time.perf_counter()
    cap = max(options.iterations, MAX_PROFILED_RUNS)
    while len(totals) < options.iterations or (time.perf_counter() - start < options.duration_s and len(totals) < cap):
        t0 = time.perf_counter()
        run()
        totals.append((time.perf_counter() - t0) * 1e3)
        if after is not None:
            after()
    return warm, totals


def result(method, measures, layers, instrumented, runs, notes=()) -> LayerwiseResult:
    layers = tuple(layers)
    return LayerwiseResult(method, measures, layers, sum(lt.ms for lt in layers), instrumented, runs, tuple(notes))


def median_per_node(runs: list[dict[str, tuple[str, float]]]) -> dict[str, tuple[str, float]]:
    """Per-node mean over the middle runs: runs ranked by their node total, the middle half kept
    (at least one). The node times then sum to about the median run, robust to outlier runs; a
    per-node median would not (noise spread over many nodes makes the sum of medians too small)."""
    ranked = sorted(runs, key=lambda r: sum(ms for _, ms in r.values()))
    keep = ranked[len(ranked) // 4: len(ranked) - len(ranked) // 4] or ranked
    names = dict.fromkeys(n for r in runs for n in r)
    ops = {n: r[n][0] for r in runs for n in r}
    return {n: (ops[n], statistics.fmean([r.get(n, ("", 0.0))[1] for r in keep])) for n in names}
