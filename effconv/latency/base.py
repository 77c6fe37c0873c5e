"""The one timing loop every backend goes through, its statistics and the recorded environment.

Conventions: every time is in milliseconds; throughput is items per second (batch / median).
Warm-up is by time (`warmup_ms`), then the loop runs until BOTH at least `iterations` runs and at
least `duration_s` seconds have passed (capped by `max_iterations`). Each iteration is timed by the
runner's timer: CUDA events on GPU backends, a host clock read after `synchronize()` otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from effconv.latency.throughput import Load

from effconv.errors import UsageError

CV_WARN = 0.10  # coefficient of variation above which a result is flagged as noisy
PRECISIONS = ("fp32", "fp16", "bf16")  # each backend runs those its descriptor lists (latency.backends)
OV_DEVICES = ("CPU", "GPU", "NPU")  # OpenVINO devices --ov-device accepts (each must be present to run)


@dataclass(frozen=True)
class LatencyOptions:
    """What to time and how; the CLI and `effconv profile` build one of these."""

    backend: str | None = None  # None: the best available backend for the model
    batch: int = 1
    precision: str = "fp32"
    warmup_ms: float = 200.0  # warm-up length, milliseconds of wall time
    duration_s: float = 1.0  # the timed loop runs at least this long...
    iterations: int = 20  # ...and at least this many iterations
    max_iterations: int = 100_000
    include_copies: bool = False  # host->device input and device->host output copies inside the timing
    cuda_graph: bool = False
    per_layer: str = "auto"  # a layerwise METHODS key, "auto" or "none"
    device_profile: str | None = None  # a profiles/devices name or a .toml path
    threads: int | None = None  # intra-op threads for CPU backends; None: the runtime's default
    torch_mode: str = "eager"  # eager | compile (torch backends)
    budget_ms: float | None = None
    ov_device: str | None = None  # the OpenVINO device (--backend openvino); None: CPU
    # --input-shape: ((input name, dims), ...) for symbolic dims (effconv.latency.shapes); a
    # measurement replaces it with every input's resolved shape before it loads anything
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] | None = None
    mode: str = "latency"  # latency: one request at a time | throughput: `streams` in flight (latency.throughput)
    streams: int | None = None  # throughput: requests in flight; None: the backend's default for the device

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise UsageError(f"--batch must be >= 1, got {self.batch}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not (0 <= self.warmup_ms < float("inf") and 0 <= self.duration_s < float("inf")):  # nan fails too
            raise UsageError(f"--warmup-ms and --duration-s must be finite and >= 0, got {self.warmup_ms}, {self.duration_s}")
        if self.budget_ms is not None and not 0 < self.budget_ms < float("inf"):
            raise UsageError(f"--budget-ms must be a finite number > 0, got {self.budget_ms}")
        if self.iterations < 1 or self.max_iterations < self.iterations:
            raise UsageError(f"--iterations must be between 1 and {self.max_iterations}, got {self.iterations}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        self._check_mode()
        if self.torch_mode not in ("eager", "compile"):
            raise UsageError(f"--torch-mode must be eager or compile, got {self.torch_mode!r}")
        if self.backend is not None:  # before any model is loaded
            from effconv.latency.backends import check_precision, check_mode

            check_precision(self.backend, self.precision)
            check_mode(self.backend, self.mode)
        from effconv.latency.shapes import check_given

        check_given(self.input_shapes)
        if self.ov_device is not None:
            if self.ov_device not in OV_DEVICES:
                raise UsageError(f"--ov-device must be one of {', '.join(OV_DEVICES)}, got {self.ov_device!r}")
            if self.backend not in (None, "openvino"):
                raise UsageError(f"--ov-device applies to --backend openvino, not {self.backend}")

    def _check_mode(self) -> None:
        if self.mode not in ("latency", "throughput"):
            raise UsageError(f"--mode must be latency or throughput, got {self.mode!r}")
        if self.streams is not None and (self.streams < 1 or self.mode != "throughput"):
            raise UsageError(f"--streams must be >= 1, got {self.streams}" if self.streams < 1
                             else "--streams applies to --mode throughput")
        if self.mode == "throughput" and self.per_layer not in ("auto", "none"):
            raise UsageError(f"--per-layer {self.per_layer} times one request at a time: use --mode latency "
                             "(the throughput mode runs no per-layer pass)")

    def input_shape(self, name: str) -> tuple[int, ...] | None:
        """The --input-shape (or resolved shape) of input `name`, None when not set."""
        return dict(self.input_shapes or ()).get(name)


class Timer(Protocol):
    method: str  # how the time is read, e.g. "host perf_counter after synchronize", "CUDA events"

    def time_ms(self, fn: Callable[[], object]) -> float: ...


class Runner(Protocol):
    """What a backend factory returns. `prepare` loads/compiles/binds, `run_once` launches one
    inference (possibly asynchronously), `synchronize` waits for it."""

    def prepare(self) -> None: ...
    def run_once(self) -> None: ...
    def synchronize(self) -> None: ...
    def timer(self) -> Timer: ...
    def environment(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class HostTimer:
    """Host clock around fn + synchronize: valid for CPU work, and for GPU work only because the
    synchronize makes the clock read happen after the device finished."""

    synchronize: Callable[[], None]
    clock: Callable[[], float] = time.perf_counter  # seconds
    method: str = "host perf_counter after synchronize"

    def time_ms(self, fn: Callable[[], object]) -> float:
        start = self.clock()
        fn()
        self.synchronize()
        return (self.clock() - start) * 1e3


@dataclass(frozen=True)
class Statistics:
    """Summary of per-iteration times (ms). `cv` is std/mean (sample std, ddof=1)."""

    iterations: int
    total_s: float  # sum of timed iterations, seconds
    min_ms: float
    median_ms: float
    mean_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    std_ms: float
    cv: float
    throughput: float  # items/s: batch / median (latency mode), completed x batch / window (throughput mode)
    warning: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def compute_statistics(samples_ms: np.ndarray | list[float], batch: int, *, throughput: float | None = None) -> Statistics:
    """Statistics of per-iteration times; percentiles use numpy's default linear interpolation.
    `throughput` (items/s): the measured figure with several requests in flight; None: batch / median."""
    import numpy as np

    s = np.asarray(samples_ms, dtype=np.float64)
    if s.size == 0:
        raise UsageError("no timed iterations")
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if s.size > 1 else 0.0
    cv = std / mean if mean > 0 else 0.0
    median = float(np.median(s))
    p90, p95, p99 = (float(v) for v in np.percentile(s, [90, 95, 99]))
    warning = None
    if cv > CV_WARN:
        warning = (
            f"high variation: coefficient of variation {cv:.1%} > {CV_WARN:.0%}; "
            "close other programs, pin clocks or raise --duration-s"
        )
    return Statistics(
        iterations=int(s.size), total_s=float(s.sum()) / 1e3, min_ms=float(s.min()), median_ms=median,
        mean_ms=mean, p90_ms=p90, p95_ms=p95, p99_ms=p99, std_ms=std, cv=cv,
        throughput=throughput if throughput is not None else batch / (median / 1e3) if median > 0 else float("inf"),
        warning=warning,
    )


@dataclass(frozen=True)
class Timing:
    """The result of one timed run: raw samples, their statistics and how they were taken."""

    samples_ms: tuple[float, ...]
    warmup_iterations: int
    stats: Statistics
    timer: str
    load: Load | None = None  # the throughput mode's figures (effconv.latency.throughput); None in latency mode


def time_runner(
    runner: Runner, options: LatencyOptions, *, clock: Callable[[], float] = time.perf_counter
) -> Timing:
    """THE timing loop. `runner.prepare()` must have been called. `clock` (seconds) decides when
    warm-up and the minimum duration are over; it is a parameter so tests can drive a fake clock."""
    timer = runner.timer()
    warm = 0
    start = clock()
    # Warm-up by time, at least one run: first runs pay for allocation, autotuning, graph capture.
    while warm == 0 or (clock() - start) * 1e3 < options.warmup_ms:
        runner.run_once()
        runner.synchronize()
        warm += 1
    samples: list[float] = []
    start = clock()
    while len(samples) < options.max_iterations and (
        len(samples) < options.iterations or clock() - start < options.duration_s
    ):
        samples.append(timer.time_ms(runner.run_once))
    return Timing(tuple(samples), warm, compute_statistics(samples, options.batch), timer.method)


# Environment ------------------------------------------------------------------------------------
def library_versions(names: tuple[str, ...] = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt")) -> dict[str, str]:
    """Installed versions from package metadata (imports nothing)."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def cpu_name() -> str:
    import platform

    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_clock_mhz() -> float | None:
    """Current clock of CPU 0 in MHz, when the kernel exposes it (cpufreq, else /proc/cpuinfo)."""
    try:
        return int(open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").read()) / 1e3
    except (OSError, ValueError):
        pass
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def host_environment() -> dict[str, object]:
    import os
    import platform

    return {
        "host_cpu": cpu_name(),
        "host_cpu_mhz": cpu_clock_mhz(),
        "host_cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": library_versions(),
    }


def gpu_environment(device_index: int = 0) -> dict[str, object]:
    """GPU name, driver and clocks through NVML when it is installed (nvidia-ml-py), else torch.
    UNVERIFIED here: written against pynvml's documented API, not run on a GPU in this project yet."""
    env: dict[str, object] = {}
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        name = pynvml.nvmlDeviceGetName(handle)
        env["device"] = name.decode() if isinstance(name, bytes) else name
        driver = pynvml.nvmlSystemGetDriverVersion()
        env["driver"] = driver.decode() if isinstance(driver, bytes) else driver
        env["sm_clock_mhz"] = pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)
        env["mem_clock_mhz"] = pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        env["max_sm_clock_mhz"] = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)
    except Exception:  # noqa: BLE001 - NVML is optional; absence is recorded, not fatal
        env.setdefault("driver", "unknown (nvidia-ml-py not installed)")
    try:
        import torch

        if torch.cuda.is_available():
            env.setdefault("device", torch.cuda.get_device_name(device_index))
            env["cuda_runtime"] = torch.version.cuda
    except ImportError:
        pass
    return env
