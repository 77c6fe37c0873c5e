"""`effconv deploy`: the deployment matrix (every ONNX backend here x precision) for a run or file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import CsvOut, JsonOut, Quiet, Seed, app, console, stage
from effconv.cli.options import BudgetMs, DurationS, Iterations, MemLimitMb, Threads, TimeoutS, WarmupMs, sandbox_limits
from effconv.sandbox import DEFAULT_MEM_LIMIT_MB, DEFAULT_TIMEOUT_S

Source = Annotated[str, typer.Argument(help="Training run (folder or checkpoint) or ONNX file.")]
Backends = Annotated[Optional[list[str]], typer.Option("--backend", help="ONNX backend to include (repeat; default: "
                                                       "every available one, see `effconv backends`).")]
Precisions = Annotated[Optional[list[str]], typer.Option("--precision", help="fp32 | fp16 | bf16 | int8 (repeat; "
                                                         "default all: cells a backend does not run say why).")]
Batch = Annotated[int, typer.Option("--batch", min=1, help="Batch size timed.")]
Accuracy = Annotated[bool, typer.Option("--accuracy/--no-accuracy", help="Measure accuracy (runs) or agreement "
                                        "with fp32 (files) on real images.")]
TestImages = Annotated[Optional[int], typer.Option("--test-images", min=1, help="Images for accuracy (default: all "
                                                   "10,000 CIFAR-10 test images; 1,000 for agreement).")]
MaxDrop = Annotated[float, typer.Option("--max-accuracy-drop", help="Best cell: at most this many points below fp32.")]
Data = Annotated[Optional[Path], typer.Option("--data", help="CIFAR-10 for accuracy (default: the run's data).")]
CalibrationData = Annotated[Optional[Path], typer.Option("--calibration-data", help="int8: images folder or CIFAR-10.")]
CalibrationImages = Annotated[int, typer.Option("--calibration-images", min=1, help="int8: calibration images.")]
Mean = Annotated[Optional[str], typer.Option("--mean", help="ONNX file without effconv metadata: per-channel mean, "
                                             "0-1 scale.")]
Std = Annotated[Optional[str], typer.Option("--std", help="Per-channel std, 0-1 scale.")]
InputShape = Annotated[Optional[str], typer.Option("--input-shape", help="NAME=NxCxHxW for symbolic image dims.")]
WorkDir = Annotated[Optional[Path], typer.Option("--work-dir", help="Keep the exported fp32/int8 files here.",
                                                 file_okay=False)]
Markdown = Annotated[Optional[Path], typer.Option("--markdown", help="Write the matrix as Markdown.", dir_okay=False)]
Plot = Annotated[Optional[Path], typer.Option("--plot", help="Latency-vs-accuracy PNG.", dir_okay=False)]


# Over 40 lines for its 27 options (one per line) and help text; the body parses, calls deploy_matrix, renders.
@app.command("deploy")
def deploy_command(
    source: Source,
    backend: Backends = None,
    precision: Precisions = None,
    batch: Batch = 1,
    warmup_ms: WarmupMs = 200.0,
    duration_s: DurationS = 1.0,
    iterations: Iterations = 20,
    threads: Threads = None,
    accuracy: Accuracy = True,
    test_images: TestImages = None,
    max_accuracy_drop: MaxDrop = 1.0,
    budget_ms: BudgetMs = None,
    data: Data = None,
    calibration_data: CalibrationData = None,
    calibration_images: CalibrationImages = 256,
    mean: Mean = None,
    std: Std = None,
    input_shape: InputShape = None,
    work_dir: WorkDir = None,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    markdown: Markdown = None,
    plot: Plot = None,
    mem_limit_mb: MemLimitMb = DEFAULT_MEM_LIMIT_MB,
    timeout_s: TimeoutS = DEFAULT_TIMEOUT_S,
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Time every ONNX backend here at every precision it runs (fp32, fp16, bf16, and int8 from a
    calibrated QDQ export), with size, Mult-Adds and accuracy, and mark the fastest cell within
    --max-accuracy-drop and --budget-ms (exit 1 when a budget is given and no cell meets it).

    Example: [bold]effconv deploy runs/r20 --markdown r20.md --json r20.json --plot r20.png[/bold]
    """
    from effconv.deploy.matrix import DeployOptions, check_matrix, deploy_matrix
    from effconv.export.int8 import parse_floats
    from effconv.profile.model import parse_input_shape

    options = DeployOptions(
        backends=tuple(backend) if backend else None, precisions=tuple(precision) if precision else DeployOptions.precisions,
        batch=batch, warmup_ms=warmup_ms, duration_s=duration_s, iterations=iterations, threads=threads,
        accuracy=accuracy, test_images=test_images, max_accuracy_drop=max_accuracy_drop, budget_ms=budget_ms,
        data=data, calibration_data=calibration_data, calibration_images=calibration_images,
        mean=parse_floats("--mean", mean), std=parse_floats("--std", std), seed=seed, work_dir=work_dir,
        input_name=parse_input_shape(input_shape)[0] if input_shape is not None else None,
        input_shape=parse_input_shape(input_shape)[1] if input_shape is not None else None,
        limits=sandbox_limits(mem_limit_mb, timeout_s),
    )
    with stage(f"building the deployment matrix of {source}"), _progress(quiet) as tell:
        matrix = deploy_matrix(source, options, tell)
    _render(matrix, quiet, json_path=json_out, csv_path=csv_out, markdown_path=markdown, plot_path=plot)
    check_matrix(matrix)


class _Plain:
    """Progress as plain lines (not a terminal: logs and pipes)."""

    def __call__(self, done: int, total: int, text: str) -> None:
        console.print(f"[{done}/{total}] {text}", markup=False, highlight=False)


def _progress(quiet: bool):
    import contextlib

    if quiet:
        return contextlib.nullcontext(None)
    if not console.is_terminal:
        return contextlib.nullcontext(_Plain())
    return _rich_progress()


def _rich_progress():
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console.real, transient=True) as progress:
            task = progress.add_task("deploy", total=None)

            def tell(done: int, total: int, text: str) -> None:
                progress.update(task, completed=done, total=total, description=text)

            yield tell

    return bar()


def _render(matrix, quiet: bool, **paths) -> None:
    """The table and its notes (unless --quiet), then the files asked for (--json, --csv, ...)."""
    from effconv.deploy.report import write_outputs

    if not quiet:
        _show(matrix)
    write_outputs(matrix, **paths)


def _show(matrix) -> None:
    from effconv.deploy.report import HEADER, table_rows
    from effconv.tables import Line, Table, show

    title = f"Deployment matrix: {matrix.source}, batch {matrix.batch}"
    table = Table(title, [(h, "left" if i < 3 or h == "answers by" else "right") for i, h in enumerate(HEADER)])
    for row in table_rows(matrix):
        table.add_row(*[cell.replace("**best** ", "* ") for cell in row])
    best = matrix.best
    parts = [table, Line(f"best: {best.label}, {best.median_ms:.3f} ms" if best else "best: none within the limits",
                         "green" if best else "red")]
    for b, r in matrix.ratios().items():
        parts.append(Line(f"{b}: int8 / fp32 latency {r:.3f}"))
    for c in matrix.cells:
        if c.status != "ok":
            parts.append(Line(f"not run: {c.label}: {c.reason}"))
    for note in matrix.notes:
        parts.append(Line(f"note: {note}"))
    show(parts, console)
