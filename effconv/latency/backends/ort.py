"""ONNX Runtime backends: ort-cpu, ort-cuda, ort-tensorrt.

Inputs and outputs are bound on the execution device with IO binding, so host<->device copies are
outside the timing unless `include_copies` (then `session.run` with numpy arrays, copies included).
ort-cuda / ort-tensorrt are UNVERIFIED in this project (no GPU in CI): they follow the documented
onnxruntime-gpu Python API (OrtValue.ortvalue_from_numpy, IOBinding.bind_ortvalue_input/output,
CUDA EP options `enable_cuda_graph`, `user_compute_stream`; run config
`disable_synchronize_execution_providers`). onnxruntime is imported only inside these functions.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from typing import TYPE_CHECKING

from effconv.errors import InvalidInputError, RuntimeCrashError, UsageError
from effconv.latency.base import HostTimer, LatencyOptions, gpu_environment

if TYPE_CHECKING:
    import numpy as np

# numpy dtype names by ONNX Runtime type (numpy is imported where a run needs it: the CLI process
# that only renders a child's report never loads it)
_NP_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8",
    "tensor(int8)": "int8", "tensor(bool)": "bool_",
}


def import_ort():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise UsageError("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)") from exc
    return onnxruntime


def session_options(options: LatencyOptions, *, profile_prefix: str | None = None):
    """The session settings shared by the timed run and every per-layer run (same threads, same
    graph optimizations), so per-layer times are comparable with the end-to-end median."""
    ort = import_ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = options.threads or 0  # 0: ORT's default (one per physical core)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: ORT's warnings would drown the report
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


def make_inputs(session, options: LatencyOptions, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the shapes effconv.latency.shapes resolves from the session's declared
    inputs, `options.batch` and `options.input_shapes`."""
    import numpy as np

    from effconv.latency.shapes import concrete_shape

    rng = np.random.default_rng(seed)
    feeds = {}
    for arg in session.get_inputs():
        shape = concrete_shape(arg.name, arg.shape, options.batch, options.input_shape(arg.name))
        dtype = _NP_TYPES.get(arg.type)
        if dtype is None:
            raise UsageError(f"input {arg.name!r} has unsupported type {arg.type}")
        dtype = np.dtype(dtype)
        values = rng.standard_normal(shape) if np.issubdtype(dtype, np.floating) else np.zeros(shape)
        feeds[arg.name] = values.astype(dtype)
    return feeds


def fp16_model(path: Path, workdir: Path) -> Path:
    """A float16 copy of the model (weights and activations) for the CUDA EP; inputs/outputs keep
    float32 so the caller feeds the same arrays. Uses the converter shipped inside onnxruntime."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    out = workdir / f"{path.stem}.fp16.onnx"
    onnx.save(model, str(out))
    return out


@dataclass
class OrtRunner:
    """One ORT session. `device` is "cpu" or "cuda"; providers in ORT's (name, options) form."""

    path: Path
    options: LatencyOptions
    backend: str
    device: str
    providers: list = field(default_factory=list)
    stream: object = None  # a torch.cuda.Stream handed to the CUDA EP, for CUDA-event timing
    session: object = None
    feeds: object = None  # the input arrays, name -> numpy array
    _run: object = None

    def prepare(self) -> None:
        ort = import_ort()
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(self.options), providers=self.providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise InvalidInputError(f"ONNX Runtime cannot load the model: {exc}", path=self.path) from exc
        feeds = self.feeds = make_inputs(self.session, self.options)
        if self.options.include_copies or self.device == "cpu":
            # On the CPU EP numpy arrays are already "on the device": run() copies nothing.
            outputs = None
            self._run = lambda: self.session.run(outputs, feeds)
        else:
            self._run = self._bind_on_device(ort, feeds)

    def _bind_on_device(self, ort, feeds: dict[str, np.ndarray]):
        """Inputs copied to the GPU once; outputs preallocated there (CUDA graphs need fixed addresses)."""
        import numpy as np

        shapes = [o.shape for o in self.session.run(None, feeds)]  # one plain run learns output shapes
        binding = self.session.io_binding()
        self._keep = []  # OrtValues must outlive the binding
        for name, value in feeds.items():
            ov = ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0)
            self._keep.append(ov)
            binding.bind_ortvalue_input(name, ov)
        for meta, shape in zip(self.session.get_outputs(), shapes):
            ov = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.dtype(_NP_TYPES[meta.type]).type, "cuda", 0)
            self._keep.append(ov)
            binding.bind_ortvalue_output(meta.name, ov)
        run_options = ort.RunOptions()
        if self.stream is not None:
            # Leave synchronisation to us: the timer records CUDA events on the same stream.
            run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        return lambda: self.session.run_with_iobinding(binding, run_options)

    def run_once(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001
            raise RuntimeCrashError(f"ONNX Runtime failed while running the model: {exc}", path=self.path) from exc

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()

    def timer(self):
        if self.stream is not None:
            from effconv.latency.backends.torch import CudaEventTimer

            return CudaEventTimer(self.stream)
        # CPU EP, or CUDA EP without torch: run() returns after ORT synchronised the device.
        return HostTimer(self.synchronize)

    def environment(self) -> dict[str, object]:
        ort = import_ort()
        env = {"runtime": f"onnxruntime {ort.__version__}", "providers": self.session.get_providers(),
               "intra_op_threads": self.options.threads or "default", "graph_optimization": "ORT_ENABLE_ALL"}
        if self.device == "cuda":
            env.update(gpu_environment())
        return env


def _cuda_stream():
    """A torch CUDA stream to share with ORT so CUDA events time the GPU work; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.Stream() if torch.cuda.is_available() else None


def ort_cpu(path: Path, options: LatencyOptions) -> OrtRunner:
    if options.precision != "fp32":
        raise UsageError("ort-cpu times fp32 only (fp16 kernels on x86 CPUs are not representative); use a CUDA backend")
    if options.cuda_graph:
        raise UsageError("--cuda-graph needs a CUDA backend, not ort-cpu")
    return OrtRunner(path, options, "ort-cpu", "cpu", ["CPUExecutionProvider"])


class OrtLoadRunner:
    """The throughput mode on ort-cpu: `streams` sessions of the same file, each run in a loop on its
    own thread (ONNX Runtime releases the GIL inside `run`), the intra-op threads split between
    them: --threads (default: the CPUs this process may use) // streams, at least 1 each."""

    timer_method = "host perf_counter around each stream's session.run"

    def __init__(self, path: Path, options: LatencyOptions) -> None:
        from effconv.latency.throughput import available_cpus

        self.path, self.options = Path(path), options
        self.streams = options.streams or available_cpus()  # the default: one single-threaded session per CPU
        self.threads_per_stream = max(1, (options.threads or available_cpus()) // self.streams)
        self.sessions: list = []
        self.feeds: list = []

    def prepare(self) -> None:
        per_stream = replace(self.options, threads=self.threads_per_stream)
        for _ in range(self.streams):
            runner = OrtRunner(self.path, per_stream, "ort-cpu", "cpu", ["CPUExecutionProvider"])
            runner.prepare()
            runner.run_once()  # a kernel that fails at run time fails here, before the load starts
            self.sessions.append(runner.session)
            self.feeds.append(runner.feeds)

    def run_load(self, gate) -> None:
        from effconv.latency.throughput import run_threads

        clock = gate.clock

        def stream(i: int) -> None:
            session, feeds = self.sessions[i], self.feeds[i]
            while gate.more():
                start = clock()
                try:
                    session.run(None, feeds)
                except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
                    gate.done(start, clock(), i)  # it ended, if badly: issued and completed stay equal
                    raise RuntimeCrashError(f"ONNX Runtime failed while running the model: {exc}", path=self.path) from exc
                gate.done(start, clock(), i)

        run_threads(gate, stream)

    def environment(self) -> dict[str, object]:
        ort = import_ort()
        return {"runtime": f"onnxruntime {ort.__version__}", "providers": self.sessions[0].get_providers(),
                "intra_op_threads": self.threads_per_stream, "sessions": len(self.sessions),
                "streams": self.streams, "graph_optimization": "ORT_ENABLE_ALL"}


def ort_cpu_load(path: Path, options: LatencyOptions) -> OrtLoadRunner:
    ort_cpu(path, options)  # the same refusals as the latency mode
    return OrtLoadRunner(path, options)


def _cuda_provider(options: LatencyOptions, stream) -> tuple[str, dict[str, str]]:
    opts = {"device_id": "0"}
    if options.cuda_graph:
        opts["enable_cuda_graph"] = "1"
    if stream is not None:
        opts["user_compute_stream"] = str(stream.cuda_stream)
    return ("CUDAExecutionProvider", opts)


def ort_cuda(path: Path, options: LatencyOptions) -> OrtRunner:
    stream = _cuda_stream()
    if options.precision == "fp16":
        path = fp16_model(path, Path(tempfile.mkdtemp(prefix="effconv-fp16-")))
    return OrtRunner(path, options, "ort-cuda", "cuda", [_cuda_provider(options, stream)], stream)


def ort_tensorrt(path: Path, options: LatencyOptions) -> OrtRunner:
    stream = _cuda_stream()
    cache = Path(os.environ.get("EFFCONV_TRT_CACHE", Path(tempfile.gettempdir()) / "effconv-trt-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    trt = {"device_id": "0", "trt_fp16_enable": "1" if options.precision == "fp16" else "0",
           "trt_engine_cache_enable": "1", "trt_engine_cache_path": str(cache),
           "trt_cuda_graph_enable": "1" if options.cuda_graph else "0"}
    if stream is not None:
        trt["user_compute_stream"] = str(stream.cuda_stream)
    providers = [("TensorrtExecutionProvider", trt), _cuda_provider(replace(options, cuda_graph=False), stream)]
    return OrtRunner(path, options, "ort-tensorrt", "cuda", providers, stream)
