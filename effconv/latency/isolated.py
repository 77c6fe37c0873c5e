"""Time an ONNX file from outside in a limited child process (effconv.sandbox), so a native crash
in ONNX Runtime or TensorRT is exit 5 and a runaway allocation or a hang exit 4, not a dead CLI.

The child gets plain values only (the path as a str, the frozen LatencyOptions, the model name, the
input shape, the static profile as its JSON document), picks the backend itself when none was given
(so this process never imports onnxruntime and the sandbox can fork instead of spawn), runs the
same measurement as in-process (`measure.measure`) and sends back plain data: the report's JSON
document, the raw samples and, when it built one, the static profile's document. Torch backends
are not isolated: they time effconv's own module, which cannot be sent to a child.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from effconv.errors import EffconvError, ResourceLimitError, UsageError
from effconv.latency.backends import best_backend, get_backend, mode_backends
from effconv.latency.base import LatencyOptions
from effconv.latency.measure import measure
from effconv.latency.report import LatencyReport
from effconv.latency.source import ModelInput
from effconv.latency.throughput import available_cpus
from effconv.profile.model import ModelProfile
from effconv.sandbox.limits import Limits
from effconv.sandbox.parent import run_in_child

# Text of the allocation failures ONNX Runtime and C++ report (ORT's arena: "Failed to allocate
# memory for requested buffer of size N"), turned into exit 4 when the child runs under a limit.
_MEMORY_HINTS = ("Failed to allocate memory", "std::bad_alloc", "bad_alloc", "out of memory")


def isolation_limits(options: LatencyOptions, limits: Limits) -> Limits:
    """The child's limits for timing with `options`, from the user's (`--mem-limit-mb`, `--timeout-s`).

    Memory: the address-space limit (RLIMIT_AS) applies to CPU backends only (ort-cpu). CUDA
    reserves tens of GB of virtual address space when it starts, far more than it uses, so an
    address-space limit would break ort-cuda, ort-tensorrt and tensorrt: those run without one.
    With no --backend the child picks the best one; this process does not import onnxruntime to
    know which, so the limit applies only when no NVIDIA device is visible (the choice is then CPU).

    Time: a latency run is long by design. The user's timeout is the slack for loading, optimising
    and profiling; on top of it comes the expected run, (warm-up + duration) per pass, one pass end
    to end plus one per-layer pass unless --per-layer none: that sum is the wall-clock limit. The
    CPU-time limit (RLIMIT_CPU counts every thread, and ONNX Runtime's intra-op threads spin while
    they wait) is the wall-clock limit times the threads that may run; the wall clock is never
    scaled by threads (--threads 1000 --timeout-s 10 must still end near 10 s + the run).
    A run of normal length never reaches either limit; one that hangs or loops does. None: no limit.
    """
    device = get_backend(options.backend).device if options.backend else _auto_device(options.mode)
    mem = limits.mem_limit_mb if device == "cpu" else None
    if limits.timeout_s is None:
        return Limits(mem, None)
    passes = 1 + (options.per_layer != "none" and options.mode == "latency")
    wall_s = limits.timeout_s + (options.warmup_ms / 1e3 + options.duration_s) * passes
    return Limits(mem, wall_s, wall_s * _threads(options))


def _threads(options: LatencyOptions) -> int:
    """Threads that may run at once: --threads, else the CPUs this process may use; in the
    throughput mode at least one per stream."""
    return max(options.threads or available_cpus(), options.streams or 1)


def _auto_device(mode: str) -> str:
    """Where the best available backend runs, without importing a runtime: "cuda" as soon as an
    NVIDIA device node exists (the child may then pick a CUDA backend) and `mode` runs on one,
    else "cpu"."""
    cuda = any(get_backend(name).device == "cuda" for name in mode_backends(mode))
    return "cuda" if cuda and any(Path("/dev").glob("nvidia[0-9]*")) else "cpu"


def measure_onnx_isolated(onnx_path: str | Path, name: str, options: LatencyOptions, profile=None,
                          limits: Limits | None = None, *, input_shape: tuple | None = None,
                          static_profile: bool = False) -> LatencyReport:
    """`measure.measure` of the ONNX file in a limited child process; the LatencyReport rebuilt
    from what it sent, with `profile` (a ModelProfile) attached. `static_profile`: with no
    `profile`, the child also builds the static profile (so the file is parsed there, too).
    Errors: as effconv.sandbox.parent.run_in_child (the child's EffconvError again, exit 4 for a limit,
    5 for a crash); `limits` (default `Limits()`) are the user's, widened by `isolation_limits`."""
    doc = profile.to_dict() if profile is not None else None
    args = (str(onnx_path), name, options, input_shape, doc, static_profile and profile is None)
    limits = isolation_limits(options, limits or Limits())
    sent = run_in_child(measure_in_child, args, None, limits, label=str(onnx_path))
    if sent["profile"] is not None:
        profile = ModelProfile.from_dict(sent["profile"], onnx_path=onnx_path)
    return LatencyReport.from_dict(sent["report"], profile=profile, samples_ms=sent["samples_ms"])


def measure_in_child(onnx_path: str, name: str, options: LatencyOptions, input_shape: list | tuple | None,
                     profile_doc: dict | None, static_profile: bool) -> dict[str, Any]:
    """The child's side (importable by name, for spawn): time the file, return plain data."""
    path = Path(onnx_path)
    model = ModelInput(name, path, None, tuple(input_shape) if input_shape is not None else None)
    profile = ModelProfile.from_dict(profile_doc, onnx_path=path) if profile_doc is not None else None
    options = replace(options, backend=options.backend or best_backend("onnx", options.mode))
    mem_mb = _address_space_limit_mb()
    if mem_mb is not None and get_backend(options.backend).device != "cpu":
        raise UsageError(f"{options.backend} cannot run under an address-space limit ({mem_mb} MB): CUDA reserves "
                         "more virtual memory than it uses; pass --backend ort-cpu, or --mem-limit-mb 0", path=path)
    try:
        report = measure(model, options, profile, build_profile=static_profile)
    except (EffconvError, MemoryError) as exc:
        hint = next((h for h in _MEMORY_HINTS if h in str(exc)), None)
        if mem_mb is None or not (hint or isinstance(exc, MemoryError)):
            raise
        detail = str(exc)[str(exc).find(hint):].splitlines()[0][:120].strip() if hint else "MemoryError"
        raise ResourceLimitError(f"out of memory under the {mem_mb} MB limit while timing the model ({detail}); "
                                 "raise --mem-limit-mb", path=path) from exc
    return {"report": report.to_dict(), "samples_ms": list(report.timing.samples_ms),
            "profile": report.profile.to_dict() if profile is None and report.profile is not None else None}


def _address_space_limit_mb() -> int | None:
    """This process's RLIMIT_AS in MB (set by the sandbox), None when unlimited."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft // (1024 * 1024)
