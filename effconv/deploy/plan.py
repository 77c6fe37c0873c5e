"""The deployment matrix's plan: its options, their checks, and the cells to fill (every ONNX
backend available here, in BACKENDS order, x every precision asked), decided before any file is made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from effconv.errors import UsageError
from effconv.sandbox import Limits

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
Progress = Callable[[int, int, str], None]  # (cells done, cells in all, what runs now)


@dataclass(frozen=True)
class DeployOptions:
    backends: tuple[str, ...] | None = None  # None: every available ONNX backend, in BACKENDS order
    precisions: tuple[str, ...] = PRECISIONS
    batch: int = 1
    warmup_ms: float = 200.0
    duration_s: float = 1.0
    iterations: int = 20
    threads: int | None = None
    accuracy: bool = True
    test_images: int | None = None  # None: all 10,000 (labelled CIFAR-10), else 1,000 agreement images
    max_accuracy_drop: float = 1.0  # points
    budget_ms: float | None = None
    data: Path | None = None  # CIFAR-10 for accuracy (default: the run's data, the default search)
    calibration_data: Path | None = None
    calibration_images: int = 256
    mean: tuple[float, ...] | None = None  # plain ONNX files without effconv metadata
    std: tuple[float, ...] | None = None
    input_shape: tuple[int, ...] | None = None  # --input-shape NAME=D..: ONNX-file sources only
    input_name: str | None = None
    seed: int = 0
    work_dir: Path | None = None  # keep the exported files here (default: a temporary folder)
    limits: Limits = Limits()


def validate(options: DeployOptions) -> None:
    bad = [p for p in options.precisions if p not in PRECISIONS]
    if bad or not options.precisions:
        raise UsageError(f"--precision must be among {', '.join(PRECISIONS)}, got {', '.join(bad) or 'none'}")
    if options.batch < 1 or options.calibration_images < 1 or (options.test_images or 1) < 1:
        raise UsageError("--batch, --calibration-images and --test-images must be >= 1")
    if not 0 <= options.max_accuracy_drop <= 100:
        raise UsageError(f"--max-accuracy-drop must be between 0 and 100 points, got {options.max_accuracy_drop}")


def input_shapes(source: str | Path, options: DeployOptions):
    """An ONNX source that is not safe to read is refused (exit 3); then the shapes every cell is timed
    at, resolved before any file is made: --input-shape must name the
    file's input and agree with its static dims (effconv.latency.shapes); a run is exported at its
    spec's shape, so there --input-shape is refused rather than ignored. None: the file's own."""
    if Path(str(source)).suffix == ".onnx":
        from effconv.export.onnx_file import check_onnx_source

        check_onnx_source(Path(str(source)))  # exit 3 before any file is made
    if options.input_shape is None:
        return None
    if Path(str(source)).suffix != ".onnx":
        raise UsageError("--input-shape applies to ONNX-file sources; a run is exported at its spec's input shape")
    from effconv.latency.shapes import resolve_input_shapes

    return resolve_input_shapes(source, options.batch, ((options.input_name or "", options.input_shape),))


def choose_backends(options: DeployOptions) -> tuple[list[str], list[str]]:
    """The ONNX backends to ask, and notes on those left out (unavailable, torch)."""
    from effconv.latency.backends import BACKENDS, get_backend

    notes, chosen = [], []
    names = options.backends or tuple(BACKENDS)
    for name in names:
        backend = get_backend(name)
        if backend.kind != "onnx":
            if options.backends:
                raise UsageError(f"--backend {name} times a torch module; the deployment matrix times ONNX files")
            continue
        avail = backend.probe()
        if not avail.available:
            if options.backends:
                raise UsageError(f"--backend {name} is not available here: {avail.reason}")
            notes.append(f"{name}: not available here ({avail.reason})")
            continue
        chosen.append(name)
    if not chosen:
        raise UsageError("no ONNX backend is available here; run `effconv backends` to see why")
    return chosen, notes




def plan_cells(backends: list[str], options: DeployOptions) -> list[tuple[str, str]]:
    """(backend, precision) of every cell, backend by backend."""
    return [(b, p) for b in backends for p in options.precisions]
