"""The latency backends, declared once: `BACKENDS` maps the name users type (`--backend ort-cpu`) to
its descriptor, which carries everything else that knows about a backend: its runner factory, its
availability probe, its `--per-layer auto` method, its help line and its pip extra. `--backend`'s
help, `effconv backends`, `--per-layer auto` and the check of which per-layer methods a backend can
run are all read from here, so a new runtime is one runner module in this package (ort, openvino,
tensorrt, torch: one each) plus one `register(...)` below.

Nothing heavy is imported here (the CLI builds its help from this module): a factory is named as
"module:function" and imported on first use, and each probe imports the runtime it checks only
when called, saying why a backend cannot run instead of failing.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from effconv.errors import UsageError

ISOLATE = "isolate"  # the per-layer method every ONNX backend can run (each fused group timed alone)


class Availability(NamedTuple):
    available: bool
    version: str | None
    reason: str | None = None  # why not, when not available


class Backend(NamedTuple):
    """`kind` says what the factory takes: "onnx" -> factory(onnx_path, options);
    "torch" -> factory(build_module, input_shape, options). Each factory returns a Runner
    (effconv.latency.base). `factory` is a callable or "module:function" (imported on first use)."""

    name: str
    kind: str  # "onnx" | "torch"
    device: str  # "cpu" | "cuda": where the timed work runs
    factory: Callable[..., Any] | str
    probe: Callable[[], Availability]
    description: str  # the help line
    per_layer: str = ISOLATE  # the method `--per-layer auto` runs (a effconv.latency.layerwise.METHODS key)
    extra: str | None = None  # the pip extra that installs the runtime (`pip install 'effconv[EXTRA]'`)
    precisions: tuple[str, ...] = ("fp32", "fp16")  # the --precision values it runs (fp16: CUDA backends)
    # The throughput mode's load runner factory (effconv.latency.throughput), called as `factory` is;
    # None: the backend runs the latency mode only (`--mode throughput` is refused, exit 2)
    throughput: Callable[..., Any] | str | None = None

    def make(self, *args: Any, mode: str = "latency") -> Any:
        """The runner for these factory arguments (see `kind`): a Runner (effconv.latency.base) in
        the latency mode, a LoadRunner (effconv.latency.throughput) in the throughput mode."""
        factory = self.factory if mode == "latency" else self.throughput
        if factory is None:
            check_mode(self.name, mode)
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(*args)

    def modes(self) -> tuple[str, ...]:
        """The --mode values it runs."""
        return ("latency", "throughput") if self.throughput is not None else ("latency",)

    def methods(self) -> tuple[str, ...]:
        """The per-layer methods this backend can run: its own, and `isolate` on ONNX backends."""
        return tuple(dict.fromkeys((self.per_layer, *((ISOLATE,) if self.kind == "onnx" else ()))))


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add `backend` to BACKENDS; a name already taken is refused (ValueError)."""
    if backend.name in BACKENDS:
        raise ValueError(f"backend {backend.name!r} is already registered")
    if backend.kind not in ("onnx", "torch") or backend.device not in ("cpu", "cuda"):
        raise ValueError(f"backend {backend.name!r}: kind must be onnx or torch, device cpu or cuda")
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def best_backend(kind: str = "onnx", mode: str = "latency") -> str:
    """The most capable available backend for a model of `kind` ("onnx" or "torch") in `mode`."""
    for name in PREFERENCE[kind]:
        if mode in BACKENDS[name].modes() and BACKENDS[name].probe().available:
            return name
    if mode != "latency":
        raise UsageError(f"--mode {mode} runs on {', '.join(mode_backends(mode))}: none of them is available for "
                         f"this {kind} model; run `effconv backends` to see why")
    raise UsageError(f"no {kind} backend is available; run `effconv backends` to see why")


def mode_backends(mode: str) -> tuple[str, ...]:
    return tuple(name for name, b in BACKENDS.items() if mode in b.modes())


def check_mode(name: str, mode: str) -> None:
    """UsageError when backend `name` does not run `mode` (`--mode throughput` on torch, TensorRT)."""
    if mode not in get_backend(name).modes():
        raise UsageError(f"--mode {mode} is not supported on --backend {name}; it runs on "
                         f"{', '.join(mode_backends(mode))}")


def check_precision(name: str, precision: str) -> None:
    """UsageError when backend `name` cannot run `precision` (bf16 elsewhere would time fp32)."""
    backend = get_backend(name)
    if precision == "fp16" and backend.device == "cpu":
        raise UsageError(f"--precision fp16 needs a CUDA backend, not --backend {name} "
                         "(CPU fp16 kernels are not representative)")
    if precision not in backend.precisions:
        raise UsageError(f"--precision {precision} is not available on --backend {name} "
                         f"(it runs {', '.join(backend.precisions)})")


def method_backends(method: str) -> tuple[str, ...]:
    """The backends that can run per-layer `method`."""
    return tuple(name for name, b in BACKENDS.items() if method in b.methods())


def per_layer_methods() -> tuple[str, ...]:
    """Every per-layer method some backend runs, in registration order."""
    return tuple(dict.fromkeys(m for b in BACKENDS.values() for m in b.methods()))


def backend_help() -> str:
    """`--backend`'s help text."""
    return f"{', '.join(BACKENDS)}; default: the best available (`effconv backends` lists them)."


def mode_help() -> str:
    """`--mode`'s help text."""
    return ("latency: one request at a time; throughput: --streams requests in flight, reporting inferences/s and "
            f"the latency at that load (runs on {', '.join(mode_backends('throughput'))}).")


def per_layer_help() -> str:
    """`--per-layer`'s help text."""
    return f"auto (the backend's own), none, {', '.join(per_layer_methods())}."


def install_hint(extra: str | None) -> str:
    return f" (pip install 'effconv[{extra}]')" if extra else ""


# Probes -------------------------------------------------------------------------------------------
def _version(*names: str) -> str | None:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _gpu_visible() -> str | None:
    """None when an NVIDIA GPU is visible, else the reason."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        return None if torch.cuda.is_available() else "no CUDA device visible to torch"
    return None if Path("/dev/nvidia0").exists() else "no NVIDIA device (/dev/nvidia0 absent)"


def _ort_probe(provider: str, needs_gpu: bool) -> Callable[[], Availability]:
    def probe() -> Availability:
        version = _version("onnxruntime-gpu", "onnxruntime")
        if version is None:
            return Availability(False, None, "onnxruntime is not installed")
        import onnxruntime

        if provider not in onnxruntime.get_available_providers():
            hint = "install onnxruntime-gpu (pip install 'effconv[gpu]')" if needs_gpu else ""
            return Availability(False, version, f"{provider} not in this onnxruntime build; {hint}".rstrip("; "))
        why = _gpu_visible() if needs_gpu else None
        return Availability(why is None, version, why)

    return probe


def probe_tensorrt() -> Availability:
    version = _version("tensorrt")
    if version is None:
        return Availability(False, None, "tensorrt is not installed (pip install 'effconv[tensorrt]')")
    if importlib.util.find_spec("torch") is None:
        return Availability(False, version, "the tensorrt runner allocates buffers with torch; torch is missing")
    why = _gpu_visible()
    return Availability(why is None, version, why)


def _torch_probe(cuda: bool) -> Callable[[], Availability]:
    def probe() -> Availability:
        version = _version("torch")
        if version is None:
            return Availability(False, None, "torch is not installed")
        why = _gpu_visible() if cuda else None
        return Availability(why is None, version, why)

    return probe


def probe_openvino() -> Availability:
    version = _version("openvino")
    if version is None:
        return Availability(False, None, "openvino is not installed" + install_hint("openvino"))
    try:
        import openvino

        devices = list(openvino.Core().available_devices)
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
        return Availability(False, version, f"openvino does not start: {str(exc).splitlines()[0][:120]}")
    if not devices:
        return Availability(False, version, "openvino sees no device")
    return Availability(True, f"{version} ({', '.join(devices)})")


ort_cpu_probe = _ort_probe("CPUExecutionProvider", needs_gpu=False)
ort_cuda_probe = _ort_probe("CUDAExecutionProvider", needs_gpu=True)
ort_tensorrt_probe = _ort_probe("TensorrtExecutionProvider", needs_gpu=True)
torch_cpu_probe = _torch_probe(cuda=False)
torch_cuda_probe = _torch_probe(cuda=True)


# The registry ---------------------------------------------------------------------------------------
register(Backend("ort-cpu", "onnx", "cpu", "effconv.latency.backends.ort:ort_cpu", ort_cpu_probe,
                 "ONNX Runtime, CPU execution provider", per_layer="ort-profiler", precisions=("fp32",),
                 throughput="effconv.latency.backends.ort:ort_cpu_load"))
register(Backend("ort-cuda", "onnx", "cuda", "effconv.latency.backends.ort:ort_cuda", ort_cuda_probe,
                 "ONNX Runtime, CUDA execution provider", extra="gpu"))
register(Backend("ort-tensorrt", "onnx", "cuda", "effconv.latency.backends.ort:ort_tensorrt", ort_tensorrt_probe,
                 "ONNX Runtime, TensorRT execution provider", extra="gpu"))
register(Backend("tensorrt", "onnx", "cuda", "effconv.latency.backends.tensorrt:tensorrt_runner", probe_tensorrt,
                 "TensorRT engine built from the ONNX file", per_layer="tensorrt-profiler", extra="tensorrt"))
register(Backend("torch-cpu", "torch", "cpu", "effconv.latency.backends.torch:torch_cpu", torch_cpu_probe,
                 "PyTorch on the CPU (eager or compiled)", per_layer="torch-profiler", precisions=("fp32",)))
register(Backend("torch-cuda", "torch", "cuda", "effconv.latency.backends.torch:torch_cuda", torch_cuda_probe,
                 "PyTorch on CUDA (eager, compiled or CUDA graph)", per_layer="torch-profiler"))
register(Backend("openvino", "onnx", "cpu", "effconv.latency.backends.openvino:openvino_runner", probe_openvino,
                 "OpenVINO, latency hint (--ov-device CPU, or GPU/NPU when present)", per_layer="openvino-profiler",
                 extra="openvino", precisions=("fp32", "bf16"), throughput="effconv.latency.backends.openvino:openvino_load"))

# Preference order when --backend is not given, per kind of model.
PREFERENCE = {"onnx": ("tensorrt", "ort-tensorrt", "ort-cuda", "ort-cpu"), "torch": ("torch-cuda", "torch-cpu")}
