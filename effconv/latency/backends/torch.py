"""PyTorch backends: torch-cpu and torch-cuda, in eager mode, torch.compile, or (CUDA) a captured
CUDA graph replayed each iteration. GPU iterations are timed with CUDA events on the stream that
runs the work. The CUDA paths are UNVERIFIED in this project (no GPU in CI); they follow the
documented torch.cuda.Event / torch.cuda.CUDAGraph API. torch is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from effconv.errors import RuntimeCrashError, UsageError
from effconv.latency.base import HostTimer, LatencyOptions, gpu_environment


@dataclass(frozen=True)
class CudaEventTimer:
    """Times fn by CUDA events recorded before and after it on `stream` (None: the current stream);
    the host waits on the end event only, so host clocks never time GPU work."""

    stream: Any = None
    method: str = "CUDA events"

    def time_ms(self, fn: Callable[[], object]) -> float:
        import torch

        stream = self.stream or torch.cuda.current_stream()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(stream):
            start.record(stream)
            fn()
            end.record(stream)
        end.synchronize()
        return float(start.elapsed_time(end))  # milliseconds


@dataclass
class TorchRunner:
    """`build` returns the nn.Module; `input_shape` includes the batch."""

    build: Callable[[], Any]
    input_shape: tuple[int, ...]
    options: LatencyOptions
    backend: str
    device: str
    mode: str = "eager"  # eager | compile | cuda-graph
    model: Any = None
    _run: Any = None

    def prepare(self) -> None:
        import torch

        if self.device == "cpu" and self.options.threads:
            torch.set_num_threads(self.options.threads)
        dtype = torch.float16 if self.options.precision == "fp16" else torch.float32
        model = self.build().eval().to(device=self.device, dtype=dtype)
        self.model = model
        if self.options.torch_mode == "compile":
            model = torch.compile(model)
        x = torch.randn(self.input_shape, generator=torch.Generator().manual_seed(0)).to(dtype)
        if self.options.include_copies and self.device == "cuda":
            host = x.pin_memory()
            self._run = lambda: _infer(model, host.to(self.device, non_blocking=True)).to("cpu", non_blocking=True)
        elif self.options.cuda_graph:
            self._run = _capture_graph(model, x.to(self.device))
        else:
            dev_x = x.to(self.device)
            self._run = lambda: _infer(model, dev_x)

    def run_once(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001
            raise RuntimeCrashError(f"torch failed while running the model: {exc}") from exc

    def synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def timer(self):
        return CudaEventTimer() if self.device == "cuda" else HostTimer(self.synchronize)

    def environment(self) -> dict[str, object]:
        import torch

        env = {"runtime": f"torch {torch.__version__}", "torch_mode": "cuda-graph" if self.options.cuda_graph else self.options.torch_mode}
        if self.device == "cpu":
            env["intra_op_threads"] = torch.get_num_threads()
        else:
            env.update(gpu_environment())
        return env


def _infer(model, x):
    import torch

    with torch.inference_mode():
        return model(x)


def _capture_graph(model, static_x) -> Callable[[], None]:
    """Warm up on a side stream (required before capture), capture one forward, replay it."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(3):
            model(static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_out = model(static_x)  # noqa: F841 - kept alive by the graph's memory pool
    return graph.replay


def torch_cpu(build: Callable[[], Any], input_shape: tuple[int, ...], options: LatencyOptions) -> TorchRunner:
    if options.precision != "fp32":
        raise UsageError("torch-cpu times fp32 only; fp16 needs torch-cuda")
    if options.cuda_graph:
        raise UsageError("--cuda-graph needs torch-cuda, not torch-cpu")
    return TorchRunner(build, input_shape, options, "torch-cpu", "cpu")


def torch_cuda(build: Callable[[], Any], input_shape: tuple[int, ...], options: LatencyOptions) -> TorchRunner:
    if options.cuda_graph and options.include_copies:
        raise UsageError("--cuda-graph and --include-copies cannot be combined on torch-cuda")
    return TorchRunner(build, input_shape, options, "torch-cuda", "cuda")
