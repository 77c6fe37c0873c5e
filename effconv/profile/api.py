"""`effconv profile` as library calls: what the command does, without the command line.

    run = run_profile(ProfileRequest("model.onnx", latency=LatencyOptions(...)))
    run.profile, run.crosscheck, run.latency
    enforce(run, budget_ms=20, ram_budget_mb=8)   # CheckFailedError (exit 1) when over

Policy lives here, not in the CLI: files from outside are parsed in a limited child process (a zoo
model's export is effconv's own and stays in-process unless `isolate` says otherwise); the latency
run times the batch that was profiled; the fvcore cross-check needs the PyTorch module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from effconv.errors import CheckFailedError, UsageError
from effconv.profile.model import ModelProfile


@dataclass(frozen=True)
class ProfileRequest:
    source: str  # ONNX file, zoo name or spec .toml
    input_shapes: Mapping[str, tuple[int, ...]] | None = None
    batch: int | None = None
    convention: str = "paper"
    strict: bool = False
    crosscheck: bool = False  # zoo models: compare with fvcore on the PyTorch module
    latency: Any = None  # effconv.latency.LatencyOptions, or None for a static profile
    isolate: bool | None = None  # None: isolate files from outside, not zoo exports
    limits: Any = None  # effconv.sandbox Limits for the child processes


@dataclass(frozen=True)
class ProfileRun:
    profile: ModelProfile
    crosscheck: Any = None  # effconv.profile.crosscheck result, when asked for
    latency: Any = None  # effconv.latency.report.LatencyReport, when measured


def run_profile(req: ProfileRequest, *, on_profile: Callable[[ModelProfile], None] | None = None,
                stage: Callable[[str], Any] = lambda doing: contextlib.nullcontext()) -> ProfileRun:
    """Static profile, cross-check, then latency. `on_profile` sees the static profile before the
    timing starts (the CLI prints it there); `stage(doing)` wraps each step (Ctrl-C names it)."""
    from effconv.profile.source import onnx_source

    name = req.source
    with stage(f"loading {name}"), onnx_source(name, input_shapes=req.input_shapes, batch=req.batch) as src:
        with stage(f"counting {name} (its sandbox child was stopped)"):
            prof = static_profile(src, req)
        with stage(f"cross-checking {name} with fvcore"):
            check = crosscheck_source(src) if req.crosscheck else None
        if on_profile is not None:
            on_profile(prof)
        backend = getattr(req.latency, "backend", None) or "the best backend"
        with stage(f"timing {name} on {backend} (the timing run was stopped)"):
            report = measure(prof, src, req) if req.latency is not None else None
    return ProfileRun(prof, check, report)


def static_profile(src, req: ProfileRequest) -> ModelProfile:
    """The static profile, parsed in a limited child process unless `isolate` is False."""
    from effconv.profile import profile_source

    options = {"input_shapes": req.input_shapes, "batch": req.batch, "convention": req.convention,
               "strict": req.strict}
    in_child = src.spec is None if req.isolate is None else req.isolate
    if not in_child:
        return profile_source(src, **options)
    from effconv.sandbox.parent import profile_onnx_isolated

    if src.spec is not None:  # a zoo export has static shapes: profile_source ignores these too
        options = {**options, "input_shapes": None, "batch": None}
    prof = profile_onnx_isolated(src.path, limits=req.limits, model=src.model, **options)
    return replace(prof, temporary_onnx=src.spec is not None)


def crosscheck_source(src):
    if src.module is None:
        raise UsageError(f"{src.path}: --crosscheck needs a zoo model or spec (fvcore runs the PyTorch module)")
    from effconv.profile.crosscheck import crosscheck

    return crosscheck(src.path, src.module, src.input_shape, src.model)


def measure(prof: ModelProfile, src, req: ProfileRequest):
    """Time the profiled ONNX file (still on disk inside run_profile's `with`) at the profiled batch;
    ONNX Runtime and TensorRT run a file from outside in a limited child, like the parse."""
    from effconv.latency.api import measure_profile_latency

    options = req.latency
    shape = next(iter(prof.input_shapes.values()), None)
    if shape and isinstance(shape[0], int):  # time the batch that was profiled
        options = replace(options, batch=shape[0])
    module = src.module
    return measure_profile_latency(prof, options, build=(lambda: module) if module is not None else None,
                                   isolate=req.isolate, limits=req.limits)


def enforce(run: ProfileRun, *, budget_ms: float | None = None, ram_budget_mb: float | None = None,
            flash_budget_mb: float | None = None) -> None:
    """Exit 1 (CheckFailedError) when fvcore disagrees or a memory or latency budget is exceeded."""
    check = run.crosscheck
    if check is not None and not check.ok:
        raise CheckFailedError(
            f"{check.model}: ONNX counts {check.onnx_mult_adds:,} Mult-Adds, fvcore {check.fvcore_matched:,}"
        )
    from effconv.profile.memory_report import check_memory_budgets

    check_memory_budgets(run.profile, ram_budget_mb, flash_budget_mb)
    if run.latency is not None:
        from effconv.latency.api import check_budget

        check_budget(run.latency, budget_ms)
