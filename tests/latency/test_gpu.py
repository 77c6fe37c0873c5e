"""GPU and TensorRT backends: skipped with the reason where they cannot run (as in CI)."""

from __future__ import annotations

import pytest

from effconv.latency import BACKENDS, LatencyOptions
from effconv.latency.api import measure_model


def _need(name: str) -> None:
    a = BACKENDS[name].probe()
    if not a.available:
        pytest.skip(f"{name}: {a.reason}")


@pytest.mark.gpu
@pytest.mark.parametrize("name, cuda_graph", [("ort-cuda", False), ("ort-cuda", True)])
def test_ort_cuda(tiny_onnx, name, cuda_graph):
    _need(name)
    r = measure_model(tiny_onnx, LatencyOptions(backend=name, cuda_graph=cuda_graph, duration_s=0.1, per_layer="isolate"))
    assert r.timing.timer in ("CUDA events", "host perf_counter after synchronize") and r.median_ms > 0


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [False, True])
def test_torch_cuda(graph):
    _need("torch-cuda")
    r = measure_model("mobilenet_v1_cifar", LatencyOptions(backend="torch-cuda", cuda_graph=graph, duration_s=0.1))
    assert r.timing.timer == "CUDA events" and r.layerwise.sum_ms > 0


@pytest.mark.tensorrt
def test_tensorrt(tiny_onnx):
    _need("tensorrt")
    r = measure_model(tiny_onnx, LatencyOptions(backend="tensorrt", precision="fp16", duration_s=0.1))
    assert r.layerwise.method == "tensorrt-profiler" and r.median_ms > 0
