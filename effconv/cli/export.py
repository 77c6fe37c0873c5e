"""`effconv export`: a run, checkpoint or zoo spec -> checked ONNX (or TensorRT engine) files."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import JsonOut, Quiet, Seed, app, console


Source = Annotated[str, typer.Argument(help="Run directory, checkpoint file, zoo spec name, spec .toml, or an "
                                          "ONNX file (--precision int8, or --format tensorrt).")]
Output = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Output file (default: <spec name>.onnx or .engine here).", dir_okay=False),
]
Format = Annotated[str, typer.Option("--format", help="onnx | tensorrt.")]
Opset = Annotated[int, typer.Option("--opset", help="ONNX opset.")]
DynamicBatch = Annotated[bool, typer.Option("--dynamic-batch", help="Make the batch dimension dynamic.")]
Batch = Annotated[int, typer.Option("--batch", min=1, help="Batch size of the example input (fixed-batch export).")]
Precision = Annotated[str, typer.Option("--precision", help="fp32 | fp16 | int8 (ONNX: calibrated QDQ; or TensorRT).")]
KeepIoFp32 = Annotated[
    bool,
    typer.Option("--keep-io-fp32/--io-fp16", help="fp16: float32 inputs/outputs with Casts inside, or float16 ones."),
]
Parity = Annotated[bool, typer.Option("--parity/--no-parity", help="Compare outputs with PyTorch before writing.")]
Rtol = Annotated[Optional[float], typer.Option("--rtol", help="Relative tolerance (default: fp32 1e-3, fp16 1e-2).")]
Atol = Annotated[Optional[float], typer.Option("--atol", help="Absolute tolerance (default 1e-4).")]
ParityImages = Annotated[
    Optional[int], typer.Option("--parity-images", min=0, help="Random images, and as many real CIFAR-10 test images "
                                "if found (default 16); int8 ONNX: real test images for the accuracy check (1000).")
]
CalibrationImages = Annotated[
    int, typer.Option("--calibration-images", min=1, help="int8: training images to calibrate on (seeded pick).")
]
CalibrationData = Annotated[
    Optional[Path], typer.Option("--calibration-data", help="int8: a folder of images or CIFAR-10 (default: --data, "
                                 "the run's data, the default search).")
]
MaxAccuracyDrop = Annotated[
    float, typer.Option("--max-accuracy-drop", help="int8: fail (exit 1) when accuracy drops more points than this "
                        "(no labels: top-1 disagreement with fp32).")
]
Mean = Annotated[Optional[str], typer.Option("--mean", help="int8 from an ONNX file without effconv metadata: "
                                             "per-channel mean, 0-1 scale (0.485,0.456,0.406).")]
Std = Annotated[Optional[str], typer.Option("--std", help="Per-channel std, 0-1 scale, with --mean.")]
InputShape = Annotated[Optional[str], typer.Option("--input-shape", help="An ONNX file with symbolic dimensions: "
                                                   "NAME=NxCxHxW (TensorRT: the profile's opt shape; a dynamic "
                                                   "batch stays 1..256).")]
Data = Annotated[
    Optional[Path],
    typer.Option("--data", help="CIFAR-10 for real-image parity and int8 calibration (default: $EFFCONV_DATA, "
                 "../shared/data, the cache)."),
]
ExternalThreshold = Annotated[
    int, typer.Option("--external-data-threshold", min=0, help="Weights over this many bytes go to <output>.data.")
]
TimingCache = Annotated[
    Optional[Path], typer.Option("--timing-cache", help="TensorRT timing cache (read, then updated).", dir_okay=False)
]
WorkspaceMib = Annotated[int, typer.Option("--workspace-mib", min=1, help="TensorRT builder workspace in MiB.")]


# Over 40 lines for its 25 options (one per line) and help text; the body parses, calls export_model, renders.
@app.command("export")
def export_command(
    source: Source,
    output: Output = None,
    fmt: Format = "onnx",
    opset: Opset = 17,
    dynamic_batch: DynamicBatch = False,
    batch: Batch = 1,
    precision: Precision = "fp32",
    keep_io_fp32: KeepIoFp32 = True,
    parity: Parity = True,
    rtol: Rtol = None,
    atol: Atol = None,
    parity_images: ParityImages = None,
    data: Data = None,
    external_threshold: ExternalThreshold = 1 << 30,
    timing_cache: TimingCache = None,
    workspace_mib: WorkspaceMib = 2048,
    calibration_images: CalibrationImages = 256,
    calibration_data: CalibrationData = None,
    max_accuracy_drop: MaxAccuracyDrop = 1.0,
    mean: Mean = None,
    std: Std = None,
    input_shape: InputShape = None,
    seed: Seed = 0,
    json_out: JsonOut = None,
    quiet: Quiet = False,
) -> None:
    """Export a model to ONNX or TensorRT, check it, and compare its outputs with PyTorch.

    A failed export (checker, parity, anything) leaves no file behind; a parity failure exits 1.

    Example: [bold]effconv export resnet20 -o resnet20.onnx --dynamic-batch[/bold]

    int8 (QDQ, calibrated on real images, checked for accuracy): [bold]effconv export runs/r20 --precision int8
    -o r20.int8.onnx[/bold]; any ONNX file: [bold]effconv export m.onnx --precision int8 --calibration-data DIR[/bold]

    An engine from any ONNX file (as trtexec --onnx): [bold]effconv export m.onnx --format tensorrt --precision fp16
    --input-shape input=1x3x224x224[/bold]
    """
    from effconv.export.api import ExportOptions, export_model
    from effconv.export.int8 import parse_floats

    name, shape = _shape(input_shape)
    options = ExportOptions(
        format=fmt, opset=opset, dynamic_batch=dynamic_batch, batch=batch, precision=precision,
        keep_io_fp32=keep_io_fp32, parity=parity, rtol=rtol, atol=atol, parity_images=parity_images,
        data=data, external_data_threshold=external_threshold, seed=seed, timing_cache=timing_cache,
        workspace_mib=workspace_mib, calibration_images=calibration_images, calibration_data=calibration_data,
        max_accuracy_drop=max_accuracy_drop, mean=parse_floats("--mean", mean), std=parse_floats("--std", std),
        input_shape=shape, input_name=name,
    )
    with _failed_checks_reported(json_out, quiet):
        result = export_model(source, output, options)
    _render(result, json_out, quiet)


@contextlib.contextmanager
def _failed_checks_reported(json_out: Path | None, quiet: bool):
    """A parity or int8 check that fails: its numbers shown and written to --json, then exit 1 with
    the one-line reason."""
    from effconv.export.int8 import Int8CheckError
    from effconv.export.parity import ParityError

    try:
        yield
    except ParityError as exc:
        _render_parity([exc.result], quiet)
        _write_json(json_out, {"passed": False, "error": str(exc), "parity": [exc.result.to_dict()]})
        raise
    except Int8CheckError as exc:
        _render_int8(exc.check, quiet)
        _write_json(json_out, {"passed": False, "error": str(exc), "int8_check": exc.check.to_dict()})
        raise


def _render(result, json_out: Path | None, quiet: bool) -> None:
    if not quiet:
        _render_parity(result.parity, quiet)
        if result.int8 is not None:
            _render_int8(result.int8, quiet)
        if not result.parity and result.int8 is None:
            console.print("parity: not checked (--no-parity)", highlight=False)
        for path in result.files:
            console.print(f"wrote {path}")
    _write_json(json_out, {"passed": True, **result.to_dict()})


def _render_parity(results, quiet: bool) -> None:
    from effconv.tables import Line, Table, show

    if quiet:
        return
    for res in results:
        title = f"Parity vs {res.reference}: {res.runtime}, {res.precision}, rtol {res.rtol:g}, atol {res.atol:g}"
        table = Table(title, [(col, "left" if col == "inputs" else "right") for col in
                              ("inputs", "images", "max abs err", "max rel err", "outside tol.", "top-1 agreement")])
        for s in res.sets:
            table.add_row(s.name, str(s.images), f"{s.max_abs_err:.3g}", f"{s.max_rel_err:.3g}",
                          str(s.outside_tolerance), f"{s.top1_agreement:.2%}")
        show([table, Line("parity: passed", "green") if res.passed else Line("parity: FAILED", "red")], console)


def _shape(text: str | None) -> tuple[str | None, tuple[int, ...] | None]:
    if text is None:
        return None, None
    from effconv.profile.model import parse_input_shape

    return parse_input_shape(text)


def _render_int8(check, quiet: bool) -> None:
    if quiet:
        return
    from effconv.tables import Line, Table, show

    table = Table(f"int8 vs fp32 ONNX: {check.runtime}, {check.calibration_images} calibration images",
                  [(c, "left" if c == "images" else "right") for c in
                   ("images", "count", "top-1 agreement", "fp32 accuracy", "int8 accuracy", "drop (points)")])
    acc = (lambda v: "-" if v is None else f"{v:.2%}")
    table.add_row(check.image_source, str(check.images), f"{check.top1_agreement:.2%}", acc(check.fp32_accuracy),
                  acc(check.int8_accuracy), f"{check.drop_points:.2f}")
    verdict = f"int8 check: {'passed' if check.passed else 'FAILED'} (max drop {check.max_accuracy_drop:g} points)"
    show([table, Line(verdict, "green" if check.passed else "red")], console)


def _write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    from effconv.io import write_text

    write_text(path, json.dumps(payload, indent=2, default=str) + "\n")
