"""`export_model`: one call from a run or spec to checked files on disk (what `effconv export` runs).

Order: resolve the source -> export into a staging folder -> onnx.checker (full) and shape
inference -> parity on ONNX Runtime CPU (and on TensorRT for engines) -> move every file into
place. Any failure, a parity failure included, raises before the move, so a failed export leaves
no file behind (the issue's rule; a kept-but-failing file would be picked up by the next step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from effconv.errors import UsageError
from effconv.export.onnx import DEFAULT_OPSET, check_onnx, stage_onnx
from effconv.export.parity import PARITY_IMAGES, check_onnx_parity, random_inputs
from effconv.export.result import ExportResult  # noqa: F401 (the result of export(), named here too)
from effconv.export.staging import DEFAULT_EXTERNAL_DATA_THRESHOLD, commit, staging_dir

FORMATS = ("onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_IMAGES = 512  # int8 calibration set: a few hundred images cover the activation ranges


@dataclass(frozen=True)
class ExportOptions:
    format: str = "onnx"
    opset: int = DEFAULT_OPSET
    dynamic_batch: bool = False
    batch: int = 1  # the exported batch size (the example input's; any size with dynamic_batch)
    precision: str = "fp32"
    keep_io_fp32: bool = True
    parity: bool = True
    rtol: float | None = None  # None: the precision's default (effconv.export.parity.TOLERANCES)
    atol: float | None = None
    parity_images: int | None = None  # None: 16 (random + as many real), int8: 1000 real test images
    data: Path | None = None  # CIFAR-10 source for the real-image parity set and int8 calibration
    external_data_threshold: int = DEFAULT_EXTERNAL_DATA_THRESHOLD  # bytes of weights
    seed: int = 0  # fresh weights and random parity inputs
    timing_cache: Path | None = None  # TensorRT only
    workspace_mib: int = 2048  # TensorRT only: builder scratch memory
    # int8 ONNX (effconv.export.int8): calibration and the accuracy check
    calibration_images: int = 256
    calibration_data: Path | None = None  # images folder or CIFAR-10 (default: --data, the run's data)
    max_accuracy_drop: float = 1.0  # points of top-1 accuracy (or of disagreement without labels)
    mean: tuple[float, ...] | None = None  # plain ONNX sources without effconv metadata, 0-1 scale
    std: tuple[float, ...] | None = None
    input_shape: tuple[int, ...] | None = None  # plain ONNX sources with symbolic image dimensions
    input_name: str | None = None  # the input --input-shape names (checked against the file's)


def default_output(source, fmt: str) -> Path:
    """<spec name>.onnx (or .engine) in the current folder."""
    return Path(f"{source.spec.name}.{'engine' if fmt == 'tensorrt' else 'onnx'}")


def validate(options: ExportOptions) -> None:
    if options.format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {options.format!r}")
    if options.precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {options.precision!r}")
    if options.batch < 1 or (options.parity_images or 0) < 0 or options.external_data_threshold < 0:
        raise UsageError("--batch must be >= 1; --parity-images and --external-data-threshold >= 0")
    for flag, tol in (("--rtol", options.rtol), ("--atol", options.atol)):
        if tol is not None and not 0 <= tol < float("inf"):
            raise UsageError(f"{flag} must be a finite number >= 0, got {tol}")
    if options.precision == "int8" and (options.calibration_images < 1 or not 0 <= options.max_accuracy_drop <= 100):
        raise UsageError("--calibration-images must be >= 1 and --max-accuracy-drop between 0 and 100 points")
    if options.parity and options.parity_images == 0:
        raise UsageError("--parity-images 0 compares nothing (parity: not checked); give a count, or --no-parity")
    if options.format == "tensorrt":
        from effconv.export.tensorrt import require_tensorrt

        require_tensorrt()


def export_model(source: str | Path, out: str | Path | None = None,
                 options: ExportOptions = ExportOptions()) -> ExportResult:
    """Export `source` (run dir, checkpoint, zoo name or spec .toml) to `out`; see module docs."""
    from effconv.export.metadata import build_metadata
    from effconv.export.source import load_source

    started = time.perf_counter()
    validate(options)
    if Path(str(source)).suffix == ".onnx":  # any ONNX file: int8 ONNX or an engine, without torch
        from effconv.export.onnx_file import export_onnx_file

        return export_onnx_file(Path(source), Path(out) if out is not None else None, options)
    if out is not None and not (Path(out).parent if str(Path(out).parent) else Path(".")).is_dir():
        raise UsageError("output folder does not exist", path=Path(out).parent)  # before any work
    src = load_source(source, seed=options.seed)
    out = Path(out) if out is not None else default_output(src, options.format)
    if options.format == "tensorrt" and out.suffix == ".onnx":
        raise UsageError("with --format tensorrt, -o names the engine (e.g. model.engine); "
                         "the ONNX file is written beside it", path=out)
    folder = out.parent if str(out.parent) else Path(".")
    onnx_precision = options.precision if options.format == "onnx" else "fp32"  # TensorRT casts itself
    meta = build_metadata(src, precision=onnx_precision,
                          io_fp16=onnx_precision == "fp16" and not options.keep_io_fp32)
    onnx_name = out.name if options.format == "onnx" else out.with_suffix(".onnx").name
    int8 = onnx_precision == "int8"
    with staging_dir(folder) as stage:
        float_name = f"{Path(onnx_name).stem}.fp32.onnx" if int8 else onnx_name  # int8: the float file stays staged
        # int8: the fp32 file's parity against PyTorch is a sanity check at the default count; the
        # int8 check's images (--parity-images) are real test images run through ONNX Runtime only.
        float_options = replace(options, parity_images=PARITY_IMAGES) if int8 else options
        staged, check, parity = _stage_checked(src, stage / float_name, stage / out.name, meta,
                                               "fp32" if int8 else onnx_precision, float_options)
        int8_check = None
        if int8:
            staged, check, int8_check = _stage_int8(src, source, staged[-1], stage / onnx_name, meta, options)
        files = commit(staged, folder)
    return ExportResult(
        source=str(source), files=files, onnx_path=folder / onnx_name,
        engine_path=folder / out.name if options.format == "tensorrt" else None, check=check,
        parity=tuple(parity), metadata=meta, seconds=time.perf_counter() - started, int8=int8_check,
    )


def _stage_int8(src, source, fp32_path: Path, int8_path: Path, meta, options):
    """Quantize the staged fp32 file (effconv.export.int8); the int8 files replace it in the commit."""
    from effconv.export.calibration import Preprocess
    from effconv.export.int8 import stage_int8

    if src.mean is None or src.std is None:
        raise UsageError("int8 needs the model's normalization (mean/std), which this source does not record")
    c, h, w = src.input_shape(1)[1:]
    pre = Preprocess(c, h, w, tuple(src.mean), tuple(src.std))
    files, int8_check = stage_int8(fp32_path, int8_path, pre, meta, options, data_for_run=_run_data(source),
                                   classes=src.spec.num_classes)
    return files, check_onnx(files[-1]), int8_check


def _run_data(source) -> Path | None:
    """The CIFAR-10 source a training run was trained on (its config.json), if it still exists."""
    import json

    path = Path(str(source))
    folder = path if path.is_dir() else path.parent
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("data_source")
    except (OSError, ValueError):
        return None
    return Path(data) if data and Path(data).exists() else None


def _stage_checked(src, onnx_path: Path, engine_path: Path, meta, onnx_precision: str, options):
    """Export (and build the engine) inside the stage, run every check; return staged files in
    commit order, the ONNX check and the parity results."""
    staged = stage_onnx(src.model, onnx_path, src.input_shape(options.batch), opset=options.opset,
                        dynamic_batch=options.dynamic_batch, metadata=meta, precision=onnx_precision,
                        keep_io_fp32=options.keep_io_fp32,
                        external_data_threshold=options.external_data_threshold)
    check = check_onnx(staged[-1])
    sets = parity_sets(src, replace(options, parity_images=options.parity_images or PARITY_IMAGES)) if options.parity else []
    parity = []
    if options.parity:
        # --rtol/--atol are for the final artifact: with TensorRT the ONNX step keeps fp32 defaults.
        own = options.format == "onnx"
        parity.append(check_onnx_parity(src.model, staged[-1], sets, precision=onnx_precision,
                                        rtol=options.rtol if own else None, atol=options.atol if own else None))
    if options.format == "tensorrt":
        staged, engine_parity = _stage_engine(src, staged, engine_path, sets, options)
        parity.extend(engine_parity)
    return staged, check, parity


def _stage_engine(src, staged, engine_path: Path, sets, options):
    """Build the engine from the staged ONNX and check it; return all staged files + parity."""
    from effconv.export.parity import torch_outputs
    from effconv.export.tensorrt import build_engine, check_engine_parity

    onnx_path = staged[-1]
    # Calibrate on training images: the test images are what the engine is then checked on.
    calib = cifar_images(src, options.data, CALIBRATION_IMAGES, split="train") if options.precision == "int8" else None
    engine_files = build_engine(onnx_path, engine_path, precision=options.precision,
                                calibration_images=calib, timing_cache=options.timing_cache,
                                workspace_mib=options.workspace_mib)
    parity = []
    if options.parity:
        parity.append(check_engine_parity(lambda x: torch_outputs(src.model, x), engine_path, sets,
                                          precision=options.precision, rtol=options.rtol, atol=options.atol))
    return tuple(staged) + tuple(engine_files), parity


def parity_sets(src, options: ExportOptions) -> list[tuple[str, np.ndarray]]:
    """Seeded random images, plus real CIFAR-10 test images where the data and model allow."""
    n = options.parity_images
    sets = [("random", random_inputs(n, src.input_shape(1)[1:], seed=options.seed))]
    real = cifar_images(src, options.data, n, split="test")
    if real is not None:
        sets.append(("cifar10-test", real))
    return sets


def cifar_images(src, data, n: int, *, split: str = "test") -> np.ndarray | None:
    """The first `n` CIFAR-10 images of `split`, normalized with the source's mean/std, float32 NCHW;
    None when the model is not a 32x32 RGB model, its normalization is unknown, or no data is found."""
    spec = src.spec
    if n == 0 or (spec.input_size, spec.in_channels) != (32, 3) or src.mean is None or src.std is None:
        return None
    from effconv.data import load_cifar10

    source = data if data is not None else _default_data()
    if source is None:
        return None

    return normalize(load_cifar10(source, split).images[:n], src.mean, src.std)


def normalize(images: np.ndarray, mean, std) -> np.ndarray:
    """uint8 NHWC images -> float32 NCHW, (x / 255 - mean) / std per channel (0-1 scale stats)."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _default_data() -> Path | None:
    """effconv.data's default search ($EFFCONV_DATA, ../shared/data, the cache); None if nothing is
    there, and parity then runs on random images only (the report lists the sets it used)."""
    from effconv.data import resolve_source

    try:
        return resolve_source(None)
    except UsageError:
        return None
