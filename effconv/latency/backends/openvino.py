"""OpenVINO backend: an ONNX file compiled for an OpenVINO device (`--ov-device`, CPU by default)
with the latency hint, timed by the same loop as every backend (effconv.latency.base.time_runner).

Precision is set, never left to the device: OpenVINO's CPU plugin runs an fp32 model in bf16 on
CPUs with AVX512-BF16 or AMX unless told otherwise, so `--precision fp32` sets
INFERENCE_PRECISION_HINT=f32 and `--precision bf16` sets bf16 (refused where the device cannot).
The environment records what it really ran: the precision hint the compiled model resolved, the
runtime precision and kernel (exec type) of the heaviest layers, threads and streams.

One inference is `start_async()` + `wait()` on one request whose input tensors are set once, so
outputs are not copied into numpy arrays inside the timing (`infer()` would copy them).
openvino is imported only inside these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effconv.errors import InvalidInputError, RuntimeCrashError, UsageError
from effconv.latency.base import OV_DEVICES, HostTimer, LatencyOptions

OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # --precision -> INFERENCE_PRECISION_HINT
COMPUTE_TYPES = ("Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul")
HEAVIEST = 5  # layers listed in the environment's `heaviest_layers`


def import_ov():
    try:
        import openvino
    except ImportError as exc:
        raise UsageError("openvino is not installed: pip install 'effconv[openvino]'") from exc
    return openvino


def compile_config(options: LatencyOptions, core, device: str, *, perf_count: bool = False) -> dict[str, Any]:
    """The compile settings shared by the timed run and the per-layer run (same hint, precision
    and threads), so per-layer counters are comparable with the end-to-end median. The throughput
    mode: the THROUGHPUT hint, and NUM_STREAMS = --streams when given (else the hint's choice)."""
    hint = OV_PRECISION[options.precision]
    caps = [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    if options.precision == "bf16" and "BF16" not in caps:
        raise UsageError(f"--precision bf16: OpenVINO's {device} device has no bf16 support here "
                         f"(capabilities {', '.join(caps)}); use --precision fp32")
    config: dict[str, Any] = {"PERFORMANCE_HINT": options.mode.upper(), "INFERENCE_PRECISION_HINT": hint}
    if options.streams:
        config["NUM_STREAMS"] = options.streams
    if options.threads:
        config["INFERENCE_NUM_THREADS"] = options.threads
    if perf_count:
        config["PERF_COUNT"] = True
    return config


def check_device(core, device: str) -> None:
    if device not in OV_DEVICES:
        raise UsageError(f"--ov-device {device!r}: choose one of {', '.join(OV_DEVICES)}")
    present = list(core.available_devices)
    if not any(d == device or d.startswith(device + ".") for d in present):
        raise UsageError(f"--ov-device {device}: no such OpenVINO device here (available: {', '.join(present) or 'none'})")


def compile_onnx(path: Path, options: LatencyOptions, *, perf_count: bool = False):
    """(core, compiled model) for the ONNX file; a model OpenVINO cannot read or compile is
    InvalidInputError (exit 3) with OpenVINO's first line."""
    ov = import_ov()
    core = ov.Core()
    device = options.ov_device or "CPU"
    check_device(core, device)
    config = compile_config(options, core, device, perf_count=perf_count)
    try:
        model = core.read_model(str(path))
        _set_shapes(model, options)
        compiled = core.compile_model(model, device, config)
    except RuntimeError as exc:
        raise InvalidInputError(f"OpenVINO cannot compile the model for {device}: {_first_line(exc)}", path=path) from exc
    return core, compiled


def _first_line(exc: BaseException) -> str:
    """OpenVINO's message on one line, without its source locations ("Exception from x.cpp:84:")."""
    skip = ("Exception from", "Check '", "Summary")
    lines = [ln.strip().lstrip("- ").rstrip(":") for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(skip)]
    return ("; ".join(lines) if lines else type(exc).__name__)[:240]


def _set_shapes(model, options: LatencyOptions) -> None:
    """Each input reshaped to the shape effconv.latency.shapes resolves (as with ONNX Runtime: a
    dynamic first dim takes --batch, --input-shape sets the other dynamic dims, static dims stay)."""
    from effconv.latency.shapes import concrete_shape

    shapes = {}
    for inp in model.inputs:
        partial = inp.get_partial_shape()
        name = inp.get_any_name()
        wanted = next((s for n in inp.get_names() if (s := options.input_shape(n)) is not None), None)
        declared = None if partial.rank.is_dynamic else [d.get_length() if d.is_static else None for d in partial]
        shape = concrete_shape(name, declared, options.batch, wanted)
        if partial.is_dynamic:
            shapes[name] = list(shape)
    if shapes:
        model.reshape(shapes)


def make_inputs(compiled, seed: int = 0) -> list:
    """Random inputs of the compiled model's (static) shapes and types."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = []
    for inp in compiled.inputs:
        shape = inp.get_partial_shape()
        if shape.is_dynamic:
            raise InvalidInputError(f"input {inp.get_any_name()!r} has dynamic dimensions {shape} besides the batch; "
                                    "OpenVINO needs static shapes here")
        dtype = inp.get_element_type().to_dtype()
        dims = tuple(d.get_length() for d in shape)
        arrays.append(rng.standard_normal(dims).astype(dtype) if dtype.kind == "f" else np.zeros(dims, dtype))
    return arrays


class OpenVINORunner:
    def __init__(self, path: Path, options: LatencyOptions) -> None:
        self.path = Path(path)
        self.options = options
        self.compiled = None
        self.request = None

    def prepare(self) -> None:
        ov = import_ov()
        self.core, self.compiled = compile_onnx(self.path, self.options)
        self.request = self.compiled.create_infer_request()
        for i, arr in enumerate(make_inputs(self.compiled)):
            self.request.set_input_tensor(i, ov.Tensor(arr))
        try:
            self.request.infer()  # one run here, so a kernel that fails at run time fails before timing
        except RuntimeError as exc:
            raise RuntimeCrashError(f"{self.path.name}: OpenVINO failed to run the model: {_first_line(exc)}") from exc

    def run_once(self) -> None:
        self.request.start_async()

    def synchronize(self) -> None:
        self.request.wait()

    def timer(self) -> HostTimer:
        return HostTimer(self.synchronize)

    def environment(self) -> dict[str, object]:
        return {"runtime": "openvino", **openvino_environment(self.core, self.compiled, self.options)}


class OpenVINOLoadRunner:
    """The throughput mode on openvino: an AsyncInferQueue of `streams` requests (default: the
    compiled model's OPTIMAL_NUMBER_OF_INFER_REQUESTS under the THROUGHPUT hint), each with its
    input tensors set once."""

    timer_method = "OpenVINO request latency (start_async to completion)"

    def __init__(self, path: Path, options: LatencyOptions) -> None:
        self.path, self.options = Path(path), options
        self.streams = options.streams or 0  # known once compiled
        self.queue = None

    def prepare(self) -> None:
        ov = import_ov()
        self.core, self.compiled = compile_onnx(self.path, self.options)
        self.streams = self.options.streams or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = ov.AsyncInferQueue(self.compiled, self.streams)
        arrays = make_inputs(self.compiled)
        for i in range(self.streams):
            for j, arr in enumerate(arrays):
                self.queue[i].set_input_tensor(j, ov.Tensor(arr))
        try:
            self.queue[0].infer()  # a kernel that fails at run time fails here, before the load starts
        except RuntimeError as exc:
            raise RuntimeCrashError(f"{self.path.name}: OpenVINO failed to run the model: {_first_line(exc)}") from exc

    def run_load(self, gate) -> None:
        """No Python callback: a pending one deadlocks the queue's destruction on the GIL. A request
        is seen complete when the queue hands its slot back (`get_idle_request_id` waits for that,
        GIL released); its latency is OpenVINO's own (start_async to completion, `request.latency`)."""
        clock, started = gate.clock, {}  # slot -> its request's issue time

        def seen(slot: int) -> None:
            gate.done(started.pop(slot), clock(), slot, latency_ms=self.queue[slot].latency)

        try:
            while True:
                slot = self.queue.get_idle_request_id()  # the slot start_async takes next
                if slot in started:
                    seen(slot)
                if not gate.more():
                    break
                started[slot] = clock()
                self.queue.start_async()
            self.queue.wait_all()
        except RuntimeError as exc:
            raise RuntimeCrashError(f"{self.path.name}: OpenVINO failed while running the model: {_first_line(exc)}") from exc
        for slot in list(started):  # the drain: completed after the window closed
            seen(slot)

    def environment(self) -> dict[str, object]:
        return {"runtime": "openvino", **openvino_environment(self.core, self.compiled, self.options),
                "requests_in_flight": self.streams}


def openvino_load(path: Path, options: LatencyOptions) -> OpenVINOLoadRunner:
    return OpenVINOLoadRunner(path, options)


def openvino_environment(core, compiled, options: LatencyOptions) -> dict[str, object]:
    """What OpenVINO really ran: the resolved precision hint, threads and streams, and the
    runtime precision and kernel of the heaviest layers (by Mult-Adds, from the runtime model)."""
    import openvino

    device = options.ov_device or "CPU"

    def prop(name: str):
        try:
            return compiled.get_property(name)
        except RuntimeError:  # a device without this property
            return None

    layers = runtime_layers(compiled)
    compute = [lay for lay in layers if lay["type"] in COMPUTE_TYPES]
    kinds: dict[str, int] = {}
    for lay in compute:
        kinds[lay["exec_type"]] = kinds.get(lay["exec_type"], 0) + 1
    precision = prop("INFERENCE_PRECISION_HINT")
    return {
        "openvino": openvino.__version__, "ov_device": device, "device": core.get_property(device, "FULL_DEVICE_NAME"),
        "precision_requested": options.precision,
        "inference_precision": str(precision.get_type_name() if hasattr(precision, "get_type_name") else precision),
        "performance_hint": str(prop("PERFORMANCE_HINT")), "intra_op_threads": prop("INFERENCE_NUM_THREADS"),
        "streams": prop("NUM_STREAMS"), "exec_types": kinds,
        "heaviest_layers": [{k: lay[k] for k in ("name", "type", "exec_type", "precision", "mult_adds")}
                            for lay in sorted(compute, key=lambda x: -x["mult_adds"])[:HEAVIEST]],
    }


def runtime_layers(compiled) -> list[dict[str, Any]]:
    """The compiled (fused) model's layers from its runtime info: friendly name, layer type, exec
    type (kernel), runtime precision, the original (ONNX-side) layer names it covers, Mult-Adds."""
    layers = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()

        def get(key: str) -> str:
            return info[key].astype(str) if key in info else ""

        originals = [n for n in get("originalLayersNames").split(",") if n]
        layers.append({"name": op.get_friendly_name(), "type": get("layerType"), "exec_type": get("primitiveType"),
                       "precision": get("runtimePrecision"), "originals": originals, "mult_adds": _mult_adds(op)})
    return layers


def _mult_adds(op) -> int:
    """Output elements x weight elements per output channel, for a layer with a weight input
    (convolutions, fully connected); 0 for the others or dynamic shapes."""
    if op.get_input_size() < 2 or op.get_output_size() < 1:
        return 0
    out, weight = op.get_output_partial_shape(0), op.get_input_partial_shape(1)
    if out.is_dynamic or weight.is_dynamic or out.rank.get_length() < 2:
        return 0
    out_dims = [d.get_length() for d in out]
    w_elems = 1
    for d in weight:
        w_elems *= d.get_length()
    channels = out_dims[1] if len(out_dims) > 2 else out_dims[-1]
    total = 1
    for d in out_dims:
        total *= d
    return total * w_elems // max(channels, 1)


def openvino_runner(path: Path, options: LatencyOptions) -> OpenVINORunner:
    return OpenVINORunner(path, options)
