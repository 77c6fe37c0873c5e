"""--per-layer isolate: each fused conv+norm+activation group (or lone node) cut into its own ONNX
model with its real input shapes and timed by the same backend and the same timing loop. Works on
every ONNX backend."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from effconv.errors import UsageError
from effconv.latency.base import time_runner
from effconv.latency.layerwise.common import LayerTime, LayerwiseContext, LayerwiseResult, result


def isolate(ctx: LayerwiseContext) -> LayerwiseResult:
    """Time each fused group alone on the same backend with the same loop (shorter duration)."""
    from effconv.latency.backends import get_backend
    from effconv.latency.onnxgraph import fused_groups, submodel

    backend = get_backend(ctx.backend)
    if backend.kind != "onnx":
        raise UsageError(f"--per-layer isolate needs an ONNX backend, not {ctx.backend}")
    short = replace(ctx.options, warmup_ms=min(ctx.options.warmup_ms, 20.0), duration_s=min(ctx.options.duration_s, 0.05),
                    iterations=min(ctx.options.iterations, 10))
    layers, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="effconv-isolate-") as tmp:
        for i, group in enumerate(fused_groups(ctx.graph)):
            path = Path(tmp) / f"g{i}.onnx"
            import onnx

            onnx.save(submodel(ctx.graph, group), str(path))
            try:
                runner = backend.make(path, short)
                runner.prepare()
            except Exception as exc:  # noqa: BLE001 - a node that cannot run alone is reported, not fatal
                skipped.append(f"{group[0]}: {str(exc).splitlines()[0][:120]}")
                continue
            ms = time_runner(runner, short).stats.median_ms
            head = ctx.graph.node(group[0])
            layers.append(LayerTime(head.name, head.op_type, tuple(group), ms))
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    notes = (f"{len(skipped)} group(s) could not run alone: " + "; ".join(skipped[:3]) + more,) if skipped else ()
    return result("isolate", f"each fused group timed alone on {ctx.backend} (median of the same timing loop)",
                   layers, None, len(layers), notes)
