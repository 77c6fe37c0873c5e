"""--per-layer torch-profiler: torch.profiler per-layer times for the torch backends: each leaf module runs inside a
`record_function` range named after it; a range's time is the CPU op time it spans (torch-cpu) or
the CUDA kernel time launched inside it (torch-cuda, UNVERIFIED here). torch imported inside."""

from __future__ import annotations

from dataclasses import replace

from effconv.errors import UsageError
from effconv.latency.layerwise.common import LayerTime, LayerwiseContext, LayerwiseResult, profiled_runs, result

PREFIX = "effconv::"


def module_type(module) -> str:
    """The layer-type vocabulary for torch modules (same words as the ONNX profile)."""
    import torch.nn as nn

    if isinstance(module, nn.Conv2d):
        k = "x".join(str(v) for v in module.kernel_size)
        if module.groups == 1:
            return f"Conv {k}"
        return f"Conv DW {k}" if module.groups == module.in_channels else f"Conv {k} grouped"
    if isinstance(module, nn.Linear):
        return "Fully Connected"
    return type(module).__name__


def _instrument(model) -> list:
    """Wrap every leaf module's forward in a named record_function range; return the hooks."""
    import torch

    handles, open_ranges = [], {}
    for name, mod in model.named_modules():
        if any(True for _ in mod.children()) or not name:
            continue

        def pre(m, args, _name=name):
            rf = torch.profiler.record_function(f"{PREFIX}{_name}")
            rf.__enter__()
            open_ranges[_name] = rf

        def post(m, args, out, _name=name):
            open_ranges.pop(_name).__exit__(None, None, None)

        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    return handles


def torch_profiler(ctx: LayerwiseContext) -> LayerwiseResult:
    if ctx.build is None:
        raise UsageError("--per-layer torch-profiler needs a torch model (a zoo name or a checkpoint)")
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = ctx.backend == "torch-cuda"
    device = "cuda" if cuda else "cpu"
    dtype = torch.float16 if ctx.options.precision == "fp16" else torch.float32
    model = ctx.build().eval().to(device=device, dtype=dtype)
    types = {name: module_type(m) for name, m in model.named_modules()}
    x = torch.randn(ctx.input_shape).to(device=device, dtype=dtype)
    handles = _instrument(model)

    def run():
        with torch.inference_mode():
            model(x)
        if cuda:
            torch.cuda.synchronize()

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    short = replace(ctx.options, duration_s=min(ctx.options.duration_s, 1.0))
    profiled_runs(run, replace(short, duration_s=0, iterations=1))  # warm-up outside the trace
    with profile(activities=activities) as prof:
        _, totals = profiled_runs(run, replace(short, warmup_ms=0))
    for h in handles:
        h.remove()
    runs = len(totals)
    layers = []
    for ev in prof.key_averages():
        if not ev.key.startswith(PREFIX):
            continue
        name = ev.key[len(PREFIX):]
        total_us = _device_us(ev) if cuda else ev.cpu_time_total  # microseconds over all runs
        layers.append(LayerTime(name, types.get(name, "?"), (), total_us / 1e3 / runs))
    measures = "torch.profiler CUDA kernel time per module (UNVERIFIED here)" if cuda else \
        "torch.profiler CPU time per leaf module (host; CPU ops run on the host)"
    import statistics

    return result("torch-profiler", measures, layers, statistics.median(totals), runs)


def _device_us(ev) -> float:
    # torch >= 2.4 names it device_time_total; older releases cuda_time_total.
    return float(getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0.0))
