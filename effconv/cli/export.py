"""`effconv export`: a run, checkpoint or zoo spec -> checked ONNX (or TensorRT engine) files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import JsonOut, Quiet, Seed, app, console
from effconv.errors import UsageError


Source = Annotated[str, typer.Argument(help="Run directory, checkpoint file, zoo spec name or spec .toml.")]
Output = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Output file (default: <spec name>.onnx or .engine here).", dir_okay=False),
]
Format = Annotated[str, typer.Option("--format", help="onnx | tensorrt.")]
Opset = Annotated[int, typer.Option("--opset", help="ONNX opset.")]
DynamicBatch = Annotated[bool, typer.Option("--dynamic-batch", help="Make the batch dimension dynamic.")]
Batch = Annotated[int, typer.Option("--batch", min=1, help="Batch size of the example input (fixed-batch export).")]
Precision = Annotated[str, typer.Option("--precision", help="fp32 | fp16 | int8 (int8: TensorRT only).")]
KeepIoFp32 = Annotated[
    bool,
    typer.Option("--keep-io-fp32/--io-fp16", help="fp16: float32 inputs/outputs with Casts inside, or float16 ones."),
]
Parity = Annotated[bool, typer.Option("--parity/--no-parity", help="Compare outputs with PyTorch before writing.")]
Rtol = Annotated[Optional[float], typer.Option("--rtol", help="Relative tolerance (default: fp32 1e-3, fp16 1e-2).")]
Atol = Annotated[Optional[float], typer.Option("--atol", help="Absolute tolerance (default 1e-4).")]
ParityImages = Annotated[
    int, typer.Option("--parity-images", min=0, help="Random images, and as many real CIFAR-10 test images if found.")
]
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
    parity_images: ParityImages = 16,
    data: Data = None,
    external_threshold: ExternalThreshold = 1 << 30,
    timing_cache: TimingCache = None,
    workspace_mib: WorkspaceMib = 2048,
    seed: Seed = 0,
    json_out: JsonOut = None,
    quiet: Quiet = False,
) -> None:
    """Export a model to ONNX or TensorRT, check it, and compare its outputs with PyTorch.

    A failed export (checker, parity, anything) leaves no file behind; a parity failure exits 1.

    Example: [bold]effconv export resnet20 -o resnet20.onnx --dynamic-batch[/bold]
    """
    from effconv.export.api import ExportOptions, export_model
    from effconv.export.parity import ParityError

    options = ExportOptions(
        format=fmt, opset=opset, dynamic_batch=dynamic_batch, batch=batch, precision=precision,
        keep_io_fp32=keep_io_fp32, parity=parity, rtol=rtol, atol=atol, parity_images=parity_images,
        data=data, external_data_threshold=external_threshold, seed=seed, timing_cache=timing_cache,
        workspace_mib=workspace_mib,
    )
    if json_out is not None and not (json_out.parent if str(json_out.parent) else Path(".")).is_dir():
        raise UsageError("folder of --json does not exist", path=json_out)
    try:
        result = export_model(source, output, options)
    except ParityError as exc:  # show the numbers, then exit 1 with the one-line reason
        _render_parity([exc.result], quiet)
        _write_json(json_out, {"passed": False, "error": str(exc), "parity": [exc.result.to_dict()]})
        raise
    if not quiet:
        _render_parity(result.parity, quiet)
        if not result.parity:
            console.print("parity: not checked (--no-parity)", highlight=False)
        for path in result.files:
            console.print(f"wrote {path}")
    _write_json(json_out, {"passed": True, **result.to_dict()})


def _render_parity(results, quiet: bool) -> None:
    from effconv.tables import Line, Table, show

    if quiet:
        return
    for res in results:
        title = f"Parity vs PyTorch: {res.runtime}, {res.precision}, rtol {res.rtol:g}, atol {res.atol:g}"
        table = Table(title, [(col, "left" if col == "inputs" else "right") for col in
                              ("inputs", "images", "max abs err", "max rel err", "outside tol.", "top-1 agreement")])
        for s in res.sets:
            table.add_row(s.name, str(s.images), f"{s.max_abs_err:.3g}", f"{s.max_rel_err:.3g}",
                          str(s.outside_tolerance), f"{s.top1_agreement:.2%}")
        show([table, Line("parity: passed", "green") if res.passed else Line("parity: FAILED", "red")], console)


def _write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    from effconv.io import write_text

    write_text(path, json.dumps(payload, indent=2, default=str) + "\n")
