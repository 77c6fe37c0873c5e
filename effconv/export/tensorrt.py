"""ONNX -> TensorRT engine (TensorRT 10 Python API), the engine's sidecar, and loading it back.

UNVERIFIED where effconv is developed: TensorRT and a GPU are absent there, so this file is written
against the TensorRT 10 API documentation and runs only in tests marked `tensorrt`. The sidecar
checks it relies on (effconv.export.sidecar) are plain Python and tested everywhere.

- fp32 and fp16 engines come from the float32 ONNX; fp16 sets BuilderFlag.FP16 and lets TensorRT
  choose per layer (it keeps float32 where float16 would be slower or unsupported).
- int8 calibrates on CIFAR-10 training images with IInt8EntropyCalibrator2 (deprecated
  since TensorRT 10.1 in favour of explicit Q/DQ quantization, still supported in 10.x); FP16 is
  set too so that layers TensorRT will not quantize fall back to float16, not float32.
- A timing cache (optional file) makes rebuilds fast; it is read before and written after a build.
- An ONNX file with dynamic dimensions gets one optimization profile (effconv.export.engine_plan):
  the batch min 1, opt 1 or --input-shape's N (latency at batch 1 is what effconv measures), max
  MAX_BATCH; a symbolic height or width fixed at --input-shape's.
- A file with int8 Q/DQ nodes (zero point 0) is built with its own scales: INT8 set, no calibrator.
- TensorRT is imported lazily; without it the command exits 2 with the install hint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from effconv.errors import InvalidInputError, RuntimeCrashError, UsageError
from effconv.export.engine_plan import MAX_BATCH, profile_shapes
from effconv.export.sidecar import (Sidecar, check_runtime, sha256_bytes, sha256_file, sidecar_path,
                                    verified_engine_bytes)
from effconv.io import write_bytes

INSTALL_HINT = "TensorRT is not installed: pip install effconv[tensorrt] (needs an NVIDIA GPU and driver)"


def require_tensorrt():
    """Import tensorrt or raise UsageError (exit 2) with the install hint."""
    try:
        import tensorrt
    except ImportError as exc:
        raise UsageError(INSTALL_HINT) from exc
    return tensorrt


def _gpu() -> tuple[str, str]:
    import torch

    if not torch.cuda.is_available():
        raise UsageError("TensorRT needs a CUDA GPU, and torch sees none")
    major, minor = torch.cuda.get_device_capability(0)
    return torch.cuda.get_device_name(0), f"{major}.{minor}"


def build_engine(onnx_path: Path, engine_path: Path, *, precision: str = "fp32",
                 calibration_images: np.ndarray | None = None, timing_cache: Path | None = None,
                 workspace_mib: int = 2048, input_shape: tuple[int, ...] | None = None, batch: int = 1,
                 explicit_int8: bool = False) -> tuple[Path, Path]:
    """Build `engine_path` and its sidecar from `onnx_path`; return (engine, sidecar). `input_shape`
    and `batch` set the optimization profile of dynamic dimensions; `explicit_int8`: the file's
    own Q/DQ scales, no calibration."""
    from effconv import __version__

    trt = require_tensorrt()
    gpu, capability = _gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    _parse(trt, network, logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    flags = _set_precision(trt, config, precision, None if explicit_int8 else calibration_images, network,
                           explicit=explicit_int8)
    profile = _profile(builder, network, input_shape, batch)
    if profile is not None:
        config.add_optimization_profile(profile)
        if precision == "int8" and not explicit_int8:
            config.set_calibration_profile(profile)
    cache = _load_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeCrashError("TensorRT could not build an engine (see its log above)", path=onnx_path)
    data = bytes(serialized)
    write_bytes(engine_path, data)
    if timing_cache is not None:
        write_bytes(timing_cache, bytes(cache.serialize()))
    sidecar = Sidecar(tensorrt=trt.__version__, gpu=gpu, compute_capability=capability,
                      precision=precision, flags=tuple(flags), engine_sha256=sha256_bytes(data),
                      onnx=onnx_path.name, onnx_sha256=sha256_file(onnx_path), effconv=__version__)
    side = sidecar_path(engine_path)
    write_bytes(side, sidecar.to_json().encode())
    return engine_path, side


def _parse(trt, network, logger, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # resolves external data beside the file
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeCrashError(f"TensorRT's ONNX parser failed: {errors}", path=onnx_path)


def _set_precision(trt, config, precision: str, images, network, *, explicit: bool = False) -> list[str]:
    flags = []
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
        flags.append("FP16")
    if precision == "int8" and explicit:  # Q/DQ in the file: its scales, nothing to calibrate
        config.set_flag(trt.BuilderFlag.INT8)
        flags.append("INT8")
    elif precision == "int8":
        if images is None or not len(images):
            raise UsageError("--precision int8 needs CIFAR-10 images to calibrate on (--data PATH)")
        config.set_flag(trt.BuilderFlag.INT8)
        flags.append("INT8")
        batch = network.get_input(0).shape[0]
        config.int8_calibrator = make_calibrator(trt, images, batch if batch > 0 else 32)
    return flags


def _profile(builder, network, input_shape, batch: int):
    """The optimization profile of the network's dynamic input (engine_plan.profile_shapes), or
    None when every dimension is fixed."""
    inp = network.get_input(0)
    shapes = profile_shapes(inp.name, tuple(inp.shape), input_shape, batch=batch)
    if shapes is None:
        return None
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, shapes.min, shapes.opt, shapes.max)
    return profile


def _load_timing_cache(config, path: Path | None):
    blob = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(blob)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def make_calibrator(trt, images: np.ndarray, batch: int):
    """An IInt8EntropyCalibrator2 that feeds `images` (float32 NCHW) in batches of `batch`."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            usable = len(images) - len(images) % batch  # TensorRT wants full batches only
            self.images, self.pos, self.current, self.cache = images[:usable], 0, None, None

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names):
            if self.pos >= len(self.images):
                return None
            chunk = np.ascontiguousarray(self.images[self.pos:self.pos + batch], dtype=np.float32)
            self.current = torch.from_numpy(chunk).cuda()  # kept alive until the next call
            self.pos += batch
            return [int(self.current.data_ptr())]

        def read_calibration_cache(self):
            return self.cache

        def write_calibration_cache(self, cache) -> None:
            self.cache = bytes(cache)

    return Calibrator()


def load_engine(path: str | Path):
    """Deserialize an engine effconv built: refuses (exit 3) a missing or malformed sidecar, a
    sha256 mismatch, another TensorRT version or another GPU model. Returns the ICudaEngine."""
    data, sidecar = verified_engine_bytes(path)
    trt = require_tensorrt()
    check_runtime(sidecar, tensorrt_version=trt.__version__, gpu=_gpu()[0], engine=path)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise InvalidInputError("TensorRT could not deserialize the engine", path=path)
    return engine


def engine_runner(engine):
    """A function running `engine` on float32 NCHW numpy batches (torch CUDA tensors as buffers)."""
    import torch

    trt = require_tensorrt()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inp = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
    out = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
    fixed = engine.get_tensor_shape(inp)[0]
    batch = fixed if fixed > 0 else MAX_BATCH
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()

    def run(images: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(images), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch], np.float32))
            real = len(chunk)
            if fixed > 0 and real < fixed:  # a fixed batch: pad with zeros, drop their outputs
                chunk = torch.cat([chunk, chunk.new_zeros((fixed - real, *chunk.shape[1:]))])
            x = chunk.cuda()
            context.set_input_shape(inp, tuple(x.shape))
            y = torch.empty(tuple(context.get_tensor_shape(out)), dtype=torch.float32, device="cuda")
            context.set_tensor_address(inp, x.data_ptr())
            context.set_tensor_address(out, y.data_ptr())
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeCrashError("TensorRT execution failed")
            stream.synchronize()
            outs.append(y[:real].cpu().numpy())
        return np.concatenate(outs)

    return run, f"tensorrt {trt.__version__} {_gpu()[0]}"


def check_engine_parity(reference, engine_path: Path, sets, *, precision: str, rtol=None, atol=None,
                        reference_name: str = "PyTorch"):
    """Parity of a freshly built engine against `reference` (images -> float32 logits: the PyTorch
    model, or ONNX Runtime on an ONNX source); raise ParityError beyond tolerance."""
    from effconv.export.parity import compare_runners, raise_if_failed, tolerances

    rtol, atol = tolerances(precision, rtol, atol)
    runner, runtime = engine_runner(load_engine(engine_path))
    result = compare_runners(reference, runner, sets, runtime=runtime, precision=precision, rtol=rtol, atol=atol,
                             reference_name=reference_name)
    raise_if_failed(result, engine_path)
    return result
