"""`deploy_matrix`: a run or an ONNX file -> one cell per (ONNX backend available here, precision).

Cells and their files: fp32, fp16 and bf16 time the float file at that precision (a backend that
does not run a precision refuses it when its runner is built, and the cell says why: the matrix
asks every registered backend, so a new one appears with no change here); int8 times the QDQ file
that `effconv export --precision int8` makes (calibrated on real training images), at fp32 for
whatever the runtime leaves unquantized. Torch backends are not cells: a deployment ships a file.

Timing: effconv.latency's `measure_model` (the one timing loop, in a limited child, no per-layer
pass). Size: the file's bytes (with external data) and effconv's profile (weight bytes, Mult-Adds,
paper convention). Accuracy: top-1 on real labelled test images (runs: the CIFAR-10 test set, all
10,000 by default) or, without labels, top-1 agreement with the reference cell. The reference is
the fp32 cell of the first backend (ort-cpu when present); a cell's drop is the reference's
accuracy minus its own, in points (without labels: its disagreement in points). The best cell is the
fastest median among those within `max_accuracy_drop` and `budget_ms`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from effconv.errors import CheckFailedError, EffconvError, UsageError
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
    input_shape: tuple[int, ...] | None = None
    seed: int = 0
    work_dir: Path | None = None  # keep the exported files here (default: a temporary folder)
    limits: Limits = Limits()


@dataclass(frozen=True)
class Cell:
    backend: str
    precision: str  # the column: fp32 | fp16 | bf16 | int8
    status: str  # ok | skipped | failed
    reason: str | None = None
    file: str | None = None
    ran: str | None = None  # the precision the runtime reports it ran, when it says
    median_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    cv: float | None = None
    iterations: int | None = None
    throughput: float | None = None  # images per second (batch / median)
    file_bytes: int | None = None
    weight_bytes: int | None = None
    mult_adds: int | None = None
    accuracy: float | None = None  # 0-1 on labelled images
    agreement: float | None = None  # top-1 agreement with the reference cell, 0-1
    accuracy_on: str | None = None  # the runtime that computed the answers
    drop_points: float | None = None
    best: bool = False
    runtime: str | None = None

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclass(frozen=True)
class Matrix:
    source: str
    kind: str  # run | onnx
    batch: int
    cells: tuple[Cell, ...]
    reference: str | None  # "ort-cpu fp32"
    images: int  # accuracy images (0: not measured)
    labelled: bool
    image_source: str | None
    max_accuracy_drop: float
    budget_ms: float | None
    notes: tuple[str, ...]
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Cell | None:
        return next((c for c in self.cells if c.best), None)

    def ratios(self) -> dict[str, float]:
        """int8 median / fp32 median per backend, measured in this run."""
        out = {}
        for c in self.cells:
            f = self.cell(c.backend, "fp32")
            if c.precision == "int8" and c.median_ms and f is not None and f.median_ms:
                out[c.backend] = c.median_ms / f.median_ms
        return out

    def cell(self, backend: str, precision: str) -> Cell | None:
        return next((c for c in self.cells if (c.backend, c.precision) == (backend, precision) and c.status == "ok"),
                    None)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["best"] = self.best.label if self.best else None
        doc["int8_fp32_latency_ratio"] = self.ratios()
        return doc


@dataclass(frozen=True)
class _Files:
    fp32: Path
    int8: Path | None
    int8_reason: str | None
    pre: Any  # effconv.export.calibration.Preprocess
    classes: int | None
    kind: str
    data: Path | None  # the run's data


def deploy_matrix(source: str | Path, options: DeployOptions = DeployOptions(),
                  progress: Progress | None = None) -> Matrix:
    """Build the matrix (see the module docstring); `progress` hears of each step."""
    from effconv.latency.base import host_environment

    _validate(options)
    backends, notes = _backends(options)
    plan = [(b, p) for b in backends for p in options.precisions]
    total = len(plan) * (1 + options.accuracy) + 1
    tell = progress or (lambda done, n, text: None)
    tell(0, total, f"exporting {source}")
    with _prepared(source, options) as files:
        images, labels, image_source, notes = _eval_images(files, options, notes)
        cells, predictions, done = [], {}, 1
        for backend, precision in plan:
            tell(done, total, f"timing {backend} {precision}")
            cell = _timed_cell(files, backend, precision, options)
            done += 1
            if options.accuracy and images is not None and cell.status == "ok":
                tell(done, total, f"accuracy {backend} {precision} ({len(images)} images)")
                cell, predictions[cell.label] = _with_predictions(cell, files, images, labels, options)
            done += options.accuracy
            cells.append(cell)
        tell(total, total, "done")
    cells, reference = _score(cells, predictions, labels)
    cells = _mark_best(cells, options)
    env = host_environment()
    return Matrix(str(source), files.kind, options.batch, tuple(cells), reference,
                  0 if images is None else len(images), labels is not None, image_source,
                  options.max_accuracy_drop, options.budget_ms, tuple(notes), env)


def check_matrix(matrix: Matrix) -> None:
    """Exit 1 when a budget was given and no cell meets it within the accuracy drop."""
    if matrix.budget_ms is not None and matrix.best is None:
        raise CheckFailedError(f"{matrix.source}: no cell within {matrix.budget_ms:g} ms and "
                               f"{matrix.max_accuracy_drop:g} points of accuracy drop")


def _validate(options: DeployOptions) -> None:
    bad = [p for p in options.precisions if p not in PRECISIONS]
    if bad or not options.precisions:
        raise UsageError(f"--precision must be among {', '.join(PRECISIONS)}, got {', '.join(bad) or 'none'}")
    if options.batch < 1 or options.calibration_images < 1 or (options.test_images or 1) < 1:
        raise UsageError("--batch, --calibration-images and --test-images must be >= 1")
    if not 0 <= options.max_accuracy_drop <= 100:
        raise UsageError(f"--max-accuracy-drop must be between 0 and 100 points, got {options.max_accuracy_drop}")


def _backends(options: DeployOptions) -> tuple[list[str], list[str]]:
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


@contextlib.contextmanager
def _prepared(source: str | Path, options: DeployOptions) -> Iterator[_Files]:
    """The fp32 and int8 files in the work folder (a temporary one unless --work-dir)."""
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
        yield _make_files(source, options.work_dir, options)
        return
    with tempfile.TemporaryDirectory(prefix="effconv-deploy-") as tmp:
        yield _make_files(source, Path(tmp), options)


def _make_files(source, work: Path, options: DeployOptions) -> _Files:
    from effconv.export.api import ExportOptions, _run_data, export_model
    from effconv.export.calibration import Preprocess
    from effconv.export.onnx_file import onnx_file_preprocess

    path = Path(str(source))
    int8_opts = ExportOptions(precision="int8", batch=options.batch, parity=False, data=options.data,
                              calibration_data=options.calibration_data, seed=options.seed,
                              calibration_images=options.calibration_images, mean=options.mean, std=options.std,
                              input_shape=options.input_shape)
    reason = None
    if path.suffix == ".onnx":
        fp32, kind, data = path, "onnx", None
        try:
            pre, classes = onnx_file_preprocess(path, int8_opts)
        except UsageError as exc:  # no normalization known: time it, but no int8 and no accuracy
            pre, classes, reason = None, None, str(exc)
    else:
        from effconv.export.source import load_source

        src = load_source(source)
        name = src.spec.name
        fp32 = export_model(source, work / f"{name}.fp32.onnx", ExportOptions(batch=options.batch, parity=False)).onnx_path
        kind, data, classes = "run", _run_data(source), src.spec.num_classes
        c, h, w = src.input_shape(1)[1:]
        pre = Preprocess(c, h, w, tuple(src.mean), tuple(src.std)) if src.mean is not None else None
        reason = None if pre is not None else "the model's normalization is unknown"
    int8 = None
    if "int8" in options.precisions and pre is not None:
        try:
            int8 = export_model(source if kind == "run" else path, work / f"{fp32.name.split('.')[0]}.int8.onnx",
                                replace(int8_opts, data=options.data or data)).onnx_path
        except EffconvError as exc:  # no calibration images, a graph ORT cannot quantize: say so in the cell
            reason = f"int8 export failed: {exc}"
    return _Files(fp32, int8, reason, pre, classes, kind, data)


def _eval_images(files: _Files, options: DeployOptions, notes: list[str]):
    """(images, labels or None, their source, notes) for accuracy; images None when not measured."""
    from effconv.export.calibration import check_set, cifar_set, default_cifar, is_cifar_source

    if not options.accuracy:
        return None, None, None, [*notes, "accuracy not measured (--no-accuracy)"]
    if files.pre is None:
        return None, None, None, [*notes, "accuracy not measured: the model's normalization is unknown"]
    try:
        if files.kind == "run":
            data = options.data or files.data or default_cifar()
            if data is None or not is_cifar_source(Path(data)):
                raise UsageError("no CIFAR-10 test set found (pass --data)")
            found = cifar_set(Path(data), "test", options.test_images or 10_000, files.pre, options.seed)
        else:
            found = check_set(options.data, options.calibration_data, options.test_images or 1000, files.pre,
                              options.seed, classes=files.classes, skip=options.calibration_images)
    except EffconvError as exc:
        return None, None, None, [*notes, f"accuracy not measured: {exc}"]
    return found.images, found.labels, found.source, notes


def _timed_cell(files: _Files, backend: str, precision: str, options: DeployOptions) -> Cell:
    from effconv.latency import LatencyOptions
    from effconv.latency import measure_model

    path = files.int8 if precision == "int8" else files.fp32
    if path is None:
        return Cell(backend, precision, "skipped", files.int8_reason or "no int8 file")
    try:
        lat = LatencyOptions(backend=backend, batch=options.batch, precision="fp32" if precision == "int8" else precision,
                             warmup_ms=options.warmup_ms, duration_s=options.duration_s, iterations=options.iterations,
                             per_layer="none", threads=options.threads)
        report = measure_model(path, lat, isolate=True, limits=options.limits)
    except UsageError as exc:  # the backend does not run this precision (or this file)
        return Cell(backend, precision, "skipped", str(exc), file=path.name)
    except EffconvError as exc:  # it crashed or refused the file: the rest of the matrix still runs
        return Cell(backend, precision, "failed", str(exc), file=path.name)
    stats, totals = report.timing.stats, report.profile.totals if report.profile is not None else None
    return Cell(backend, precision, "ok", file=path.name, ran=_ran(report.environment, precision),
                median_ms=stats.median_ms, p99_ms=stats.p99_ms, mean_ms=stats.mean_ms, cv=stats.cv,
                iterations=stats.iterations, throughput=stats.throughput, file_bytes=_file_bytes(path),
                weight_bytes=sum(totals.weight_bytes.values()) if totals else None,
                mult_adds=totals.mult_adds if totals else None, runtime=str(report.environment.get("runtime", "")))


def _ran(env, precision: str) -> str:
    """What the runtime says it ran (a backend that records it, e.g. OpenVINO's resolved hint)."""
    for key in ("inference_precision", "precision_ran", "execution_precision"):
        if env.get(key):
            value = str(env[key])
            return f"int8 QDQ + {value}" if precision == "int8" else value
    return "int8 QDQ + fp32" if precision == "int8" else precision


def _file_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def _with_predictions(cell: Cell, files: _Files, images, labels, options: DeployOptions) -> Cell:
    from effconv.deploy.evaluate import evaluate

    path = files.int8 if cell.precision == "int8" else files.fp32
    try:
        preds, on = evaluate(cell.backend, path, cell.precision, images, options.limits)
    except EffconvError as exc:
        return replace(cell, reason=f"accuracy not measured: {exc}"), None
    acc = float(np.mean(preds == labels)) if labels is not None else None
    return replace(cell, accuracy=acc, accuracy_on=on), preds


def _score(cells: list[Cell], predictions: dict, labels) -> tuple[list[Cell], str | None]:
    """Agreement with the reference cell and each cell's drop, in points."""
    ref = next((c for c in cells if c.precision == "fp32" and c.status == "ok"), None)
    if ref is None:
        return cells, None
    ref_preds = predictions.get(ref.label)
    out = []
    for c in cells:
        preds = predictions.get(c.label)
        if preds is None or ref_preds is None:
            out.append(c)
            continue
        agreement = float(np.mean(preds == ref_preds))
        drop = 100.0 * (ref.accuracy - c.accuracy) if labels is not None else 100.0 * (1.0 - agreement)
        out.append(replace(c, agreement=agreement, drop_points=drop))
    return out, ref.label


def _mark_best(cells: list[Cell], options: DeployOptions) -> list[Cell]:
    ok = [c for c in cells if c.status == "ok" and c.median_ms is not None
          and (c.drop_points is None or c.drop_points <= options.max_accuracy_drop)
          and (options.budget_ms is None or c.median_ms <= options.budget_ms)]
    if not ok:
        return cells
    best = min(ok, key=lambda c: c.median_ms)
    return [replace(c, best=True) if c is best else c for c in cells]
