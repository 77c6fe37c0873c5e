"""TensorRT backend: build an engine in memory from the ONNX file (never load an engine from disk
here: an engine is executable code), bind device buffers once, time `execute_async_v3` with CUDA
events on one stream. Per-layer times come from an IProfiler attached in a separate run.

UNVERIFIED in this project (no GPU or TensorRT in CI): written against the TensorRT 10 Python API
(Builder.create_network(0), OnnxParser, build_serialized_network, Runtime.deserialize_cuda_engine,
IExecutionContext.set_tensor_address / set_input_shape / execute_async_v3, IProfiler). Buffers and
the stream are torch CUDA tensors/streams. tensorrt and torch are imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effconv.errors import InvalidInputError, RuntimeCrashError, UsageError
from effconv.latency.base import LatencyOptions, gpu_environment

WORKSPACE_BYTES = 1 << 30  # builder scratch memory: 1 GiB


def import_trt():
    try:
        import tensorrt
    except ImportError as exc:
        raise UsageError("TensorRT is not installed: pip install 'effconv[tensorrt]' (needs an NVIDIA GPU)") from exc
    return tensorrt


def build_engine(path: Path, options: LatencyOptions):
    """Parse the ONNX file and build a deserialized engine; fixed batch = options.batch."""
    from effconv.latency.shapes import concrete_shape

    trt = import_trt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InvalidInputError(f"TensorRT cannot parse the model: {errors}", path=path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # keeps layer names for IProfiler
    if options.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = concrete_shape(tensor.name, tuple(tensor.shape), options.batch, options.input_shape(tensor.name))
        profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeCrashError("TensorRT failed to build an engine (see the TensorRT log above)", path=path)
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


@dataclass
class TensorRTRunner:
    path: Path
    options: LatencyOptions
    backend: str = "tensorrt"
    engine: Any = None
    context: Any = None
    stream: Any = None
    buffers: dict[str, Any] = field(default_factory=dict)

    def prepare(self) -> None:
        import torch

        from effconv.latency.shapes import concrete_shape

        trt = import_trt()
        self.engine = build_engine(self.path, self.options)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                shape = concrete_shape(name, shape, self.options.batch, self.options.input_shape(name))  # as built
                self.context.set_input_shape(name, shape)
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(name))
            self.buffers[name] = torch.randn(shape, device="cuda").to(dtype)
            self.context.set_tensor_address(name, int(self.buffers[name].data_ptr()))
        self._host = {n: b.cpu().pin_memory() for n, b in self.buffers.items()}

    def run_once(self) -> None:
        copies = self.options.include_copies
        if copies:
            for name in self._inputs():
                self.buffers[name].copy_(self._host[name], non_blocking=True)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeCrashError("TensorRT execute_async_v3 failed", path=self.path)
        if copies:
            for name in self._outputs():
                self._host[name].copy_(self.buffers[name], non_blocking=True)

    def _inputs(self) -> list[str]:
        trt = import_trt()
        return [n for n in self.buffers if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]

    def _outputs(self) -> list[str]:
        return [n for n in self.buffers if n not in self._inputs()]

    def synchronize(self) -> None:
        self.stream.synchronize()

    def timer(self):
        from effconv.latency.backends.torch import CudaEventTimer

        return CudaEventTimer(self.stream)

    def environment(self) -> dict[str, object]:
        trt = import_trt()
        return {"runtime": f"tensorrt {trt.__version__}", **gpu_environment()}

    def layer_times(self, runs: int) -> dict[str, float]:
        """Mean time per TensorRT layer (ms) over `runs` profiled executions (a separate run)."""
        trt = import_trt()

        class _Profiler(trt.IProfiler):
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)
                self.totals: dict[str, float] = {}

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                self.totals[layer_name] = self.totals.get(layer_name, 0.0) + ms

        profiler = _Profiler()
        self.context.profiler = profiler
        for _ in range(runs):
            self.run_once()
            self.synchronize()
        return {name: total / runs for name, total in profiler.totals.items()}


def _torch_dtype(trt, dtype):
    import torch

    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.int8: torch.int8, trt.bool: torch.bool}
    if dtype not in table:
        raise UsageError(f"TensorRT tensor type {dtype} is not supported by effconv's runner")
    return table[dtype]


def tensorrt_runner(path: Path, options: LatencyOptions) -> TensorRTRunner:
    if options.cuda_graph:
        raise UsageError("--cuda-graph is not offered on the tensorrt backend yet; use ort-tensorrt or torch-cuda")
    return TensorRTRunner(path, options)
