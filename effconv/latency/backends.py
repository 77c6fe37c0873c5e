"""Backend descriptors and availability probes. Probes import the runtime they check (only when
called), and say why a backend cannot run instead of failing."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effconv.latency.base import library_versions


@dataclass(frozen=True)
class Availability:
    available: bool
    version: str | None
    reason: str | None = None  # why not, when not available


@dataclass(frozen=True)
class Backend:
    """`kind` says what the factory takes: "onnx" -> factory(onnx_path, options);
    "torch" -> factory(build_module, input_shape, options). Each factory returns a Runner."""

    name: str
    kind: str
    device: str  # "cpu" | "cuda": where the timed work runs
    factory: Callable[..., Any]
    probe: Callable[[], Availability]
    description: str


def _gpu_visible() -> str | None:
    """None when an NVIDIA GPU is visible, else the reason."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        return None if torch.cuda.is_available() else "no CUDA device visible to torch"
    return None if Path("/dev/nvidia0").exists() else "no NVIDIA device (/dev/nvidia0 absent)"


def _ort_probe(provider: str, needs_gpu: bool) -> Callable[[], Availability]:
    def probe() -> Availability:
        versions = library_versions(("onnxruntime", "onnxruntime-gpu"))
        version = versions.get("onnxruntime-gpu") or versions.get("onnxruntime")
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
    version = library_versions(("tensorrt",)).get("tensorrt")
    if version is None:
        return Availability(False, None, "tensorrt is not installed (pip install 'effconv[tensorrt]')")
    if importlib.util.find_spec("torch") is None:
        return Availability(False, version, "the tensorrt runner allocates buffers with torch; torch is missing")
    why = _gpu_visible()
    return Availability(why is None, version, why)


def _torch_probe(cuda: bool) -> Callable[[], Availability]:
    def probe() -> Availability:
        version = library_versions(("torch",)).get("torch")
        if version is None:
            return Availability(False, None, "torch is not installed")
        why = _gpu_visible() if cuda else None
        return Availability(why is None, version, why)

    return probe


ort_cpu_probe = _ort_probe("CPUExecutionProvider", needs_gpu=False)
ort_cuda_probe = _ort_probe("CUDAExecutionProvider", needs_gpu=True)
ort_tensorrt_probe = _ort_probe("TensorrtExecutionProvider", needs_gpu=True)
torch_cpu_probe = _torch_probe(cuda=False)
torch_cuda_probe = _torch_probe(cuda=True)
