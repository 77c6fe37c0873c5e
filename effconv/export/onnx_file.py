"""Any ONNX file as an export source, without torch.

- `effconv export model.onnx --precision int8`: a calibrated QDQ copy (effconv.export.int8).
- `effconv export model.onnx --format tensorrt [--precision fp32|fp16|int8]`: an engine built from
  the file itself, as `trtexec --onnx` builds one (effconv.export.tensorrt), with its sidecar; the
  file is not copied, the sidecar names it and its sha256. Dynamic dimensions get their
  optimization profile from --input-shape and --batch (effconv.export.engine_plan). int8 calibrates
  on real images preprocessed as the file's effconv metadata (or --mean/--std) says, unless the file
  carries int8 Q/DQ nodes of its own, whose scales TensorRT then uses. Parity: the engine against
  ONNX Runtime CPU on the same file, on seeded random inputs of the profile's opt shape.

Every check that needs no TensorRT (output name and folder, the input and its shape, the Q/DQ form,
the normalization int8 needs, the ONNX checker) runs before the build; nothing is written unless
the engine builds and passes parity (the staging folder of effconv.export.staging).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from effconv.errors import InvalidInputError, UsageError
from effconv.export.calibration import Preprocess
from effconv.export.engine_plan import check_input_name, graph_input, profile_shapes, quantization_mode


def export_onnx_file(source: Path, out: Path | None, options):
    """The ONNX-file export the options ask for (int8 ONNX, or a TensorRT engine)."""
    if options.format != "tensorrt" and options.precision != "int8":
        raise UsageError("from an ONNX file effconv exports --precision int8 --format onnx only, or an engine "
                         "with --format tensorrt", path=source)
    _load(source)  # a file that is not safe to read is refused before calibration or a builder starts
    if options.format == "tensorrt":
        return export_engine_file(source, out, options)
    return _export_int8_file(source, out, options)


def _load(path: Path):
    """The model without its external data, refused (exit 3) before any work when it is not a readable
    ONNX file or its external data is not safe to read (outside the model's folder, missing, short)."""
    import onnx

    from effconv.sandbox.safety import check_external_data

    if not path.is_file():
        raise InvalidInputError("no such file" if not path.exists() else "is a directory, not an ONNX file", path=path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InvalidInputError(f"not a readable ONNX file ({type(exc).__name__})", path=path) from exc
    check_external_data(model, path)
    return model


def check_onnx_source(path: Path) -> None:
    """What `_load` refuses, for flows that read the file later (the deployment matrix)."""
    _load(path)


def onnx_file_preprocess(path: Path, options) -> tuple[Preprocess, int | None]:
    """Input shape and normalization of a plain ONNX file: its effconv metadata, else --mean/--std;
    shape from the graph, else --input-shape. Returns the preprocessing and the class count."""
    import onnx

    from effconv.export.metadata import PREFIX

    model = _load(path)
    meta = {p.key[len(PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise InvalidInputError("int8 export takes a model with one float32 image input", path=path)
    check_input_name(getattr(options, "input_name", None), inputs[0].name, path)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if options.input_shape is not None:
        dims = list(options.input_shape)
    if len(dims) != 4 or any(d is None for d in dims[1:]):
        raise UsageError(f"input {inputs[0].name!r} has shape {dims}: give --input-shape "
                         f"{inputs[0].name}=1x3xHxW (NCHW)", path=path)
    mean = options.mean or (tuple(json.loads(meta["mean"])) if "mean" in meta else None)
    std = options.std or (tuple(json.loads(meta["std"])) if "std" in meta else None)
    if mean is None or std is None:
        raise UsageError("the file has no effconv normalization metadata: give --mean and --std (0-1 pixel "
                         "scale, one value per channel, e.g. --mean 0.485,0.456,0.406)", path=path)
    out = model.graph.output[0].type.tensor_type.shape.dim
    classes = out[-1].dim_value if out and out[-1].HasField("dim_value") else None
    return Preprocess(dims[1], dims[2], dims[3], tuple(map(float, mean)), tuple(map(float, std))), classes


def _output_in(out: Path, source: Path) -> Path:
    """The folder `out` goes to; refuses the source itself and a folder that is not there."""
    if out.resolve() == source.resolve():
        raise UsageError("-o names the source file; choose another output", path=out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError("output folder does not exist", path=folder)
    return folder


def _export_int8_file(source: Path, out: Path | None, options):
    """`effconv export model.onnx --precision int8`: quantize any float32 ONNX file."""
    from effconv.export.int8 import stage_int8
    from effconv.export.metadata import read_metadata
    from effconv.export.onnx import check_onnx
    from effconv.export.result import ExportResult
    from effconv.export.staging import commit, staging_dir

    started = time.perf_counter()
    pre, classes = onnx_file_preprocess(source, options)
    out = Path(out) if out is not None else Path(f"{source.stem}.int8.onnx")
    folder = _output_in(out, source)
    meta = {**read_metadata(source), "effconv.source_file": source.name}
    with staging_dir(folder) as stage:
        files, check = stage_int8(source, stage / out.name, pre, meta, options, classes=classes)
        onnx_check = check_onnx(files[-1])
        placed = commit(files, folder)
    return ExportResult(source=str(source), files=placed, onnx_path=folder / out.name, engine_path=None,
                        check=onnx_check, parity=(), metadata=meta, seconds=time.perf_counter() - started,
                        int8=check)


@dataclass(frozen=True)
class EnginePlan:
    """An engine build from an ONNX file, checked before TensorRT is touched."""

    folder: Path
    name: str  # the engine's file name; the sidecar is <name>.json beside it
    input: str
    shape: tuple[int, ...]  # the shape the engine is built for (the profile's opt): parity inputs
    explicit_int8: bool  # the file's own int8 Q/DQ scales
    pre: Preprocess | None  # int8 calibration only: how images become inputs


def plan_engine(source: Path, out: Path | None, options) -> EnginePlan:
    """Every check of an engine build that needs no TensorRT (see the module docstring)."""
    model = _load(source)
    out = Path(out) if out is not None else Path(f"{source.stem}.engine")
    if out.suffix == ".onnx":
        raise UsageError("with --format tensorrt, -o names the engine (e.g. model.engine)", path=out)
    folder = _output_in(out, source)
    name, dims = graph_input(model, source)
    check_input_name(options.input_name, name, source)
    profile = profile_shapes(name, dims, options.input_shape, batch=options.batch)
    mode = quantization_mode(model, source)
    if mode is not None and options.precision != "int8":
        raise UsageError("the file is quantized (int8 Q/DQ nodes): build it with --precision int8", path=source)
    pre = onnx_file_preprocess(source, options)[0] if options.precision == "int8" and mode is None else None
    shape = profile.opt if profile is not None else tuple(dims)
    return EnginePlan(folder, out.name, name, shape, mode is not None, pre)


def export_engine_file(source: Path, out: Path | None, options):
    """`effconv export model.onnx --format tensorrt`: the engine and its sidecar, checked."""
    from effconv.export.calibration import calibration_set
    from effconv.export.metadata import read_metadata
    from effconv.export.onnx import check_onnx
    from effconv.export.result import ExportResult
    from effconv.export.staging import commit, staging_dir
    from effconv.export.tensorrt import build_engine

    started = time.perf_counter()
    plan = plan_engine(source, out, options)
    check = check_onnx(source)
    calib = None
    if plan.pre is not None:  # before the build: no images reachable is a usage error, not a failed build
        calib = calibration_set(options.calibration_data or options.data, options.calibration_images, plan.pre,
                                options.seed).images
    with staging_dir(plan.folder) as stage:
        files = build_engine(source, stage / plan.name, precision=options.precision, calibration_images=calib,
                             timing_cache=options.timing_cache, workspace_mib=options.workspace_mib,
                             input_shape=options.input_shape, batch=options.batch,
                             explicit_int8=plan.explicit_int8)
        parity = (_engine_parity(source, files[0], plan, options),) if options.parity else ()
        placed = commit(files, plan.folder)
    return ExportResult(source=str(source), files=placed, onnx_path=source, engine_path=plan.folder / plan.name,
                        check=check, parity=parity, metadata=read_metadata(source),
                        seconds=time.perf_counter() - started)


def _engine_parity(source: Path, engine: Path, plan: EnginePlan, options):
    """The staged engine against ONNX Runtime CPU on the source file (seeded random inputs)."""
    from effconv.export.parity import PARITY_IMAGES, ort_runner, random_inputs
    from effconv.export.tensorrt import check_engine_parity

    reference, runtime = ort_runner(source)
    images = random_inputs(options.parity_images or PARITY_IMAGES, plan.shape[1:], seed=options.seed)
    return check_engine_parity(reference, engine, [("random", images)], precision=options.precision,
                               rtol=options.rtol, atol=options.atol, reference_name=runtime)
