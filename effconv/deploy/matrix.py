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

Where each part lives: effconv.deploy.plan (options, checks, the cells), files (the fp32 and int8
files, the accuracy images), measure (one cell timed and scored), choice (agreement, drop, the best
cell, the verdict), result (Cell, Matrix). This module runs them in order.
"""

from __future__ import annotations

from pathlib import Path

from effconv.deploy.choice import check_matrix, mark_best, score
from effconv.deploy.files import eval_images, prepared
from effconv.deploy.measure import timed_cell, with_predictions
from effconv.deploy.plan import PRECISIONS, DeployOptions, Progress, choose_backends, input_shapes, plan_cells, validate
from effconv.deploy.result import Cell, Matrix

__all__ = ["PRECISIONS", "Cell", "DeployOptions", "Matrix", "check_matrix", "deploy_matrix"]


def deploy_matrix(source: str | Path, options: DeployOptions = DeployOptions(),
                  progress: Progress | None = None) -> Matrix:
    """Build the matrix (see the module docstring); `progress` hears of each step."""
    from effconv.latency.base import host_environment

    validate(options)
    shapes = input_shapes(source, options)
    backends, notes = choose_backends(options)
    plan = plan_cells(backends, options)
    total = len(plan) * (1 + options.accuracy) + 1
    tell = progress or (lambda done, n, text: None)
    tell(0, total, f"exporting {source}")
    with prepared(source, options) as files:
        images, labels, image_source, notes = eval_images(files, options, notes)
        cells, predictions, done = [], {}, 1
        for backend, precision in plan:
            tell(done, total, f"timing {backend} {precision}")
            cell = timed_cell(files, backend, precision, options, shapes)
            done += 1
            if options.accuracy and images is not None and cell.status == "ok":
                tell(done, total, f"accuracy {backend} {precision} ({len(images)} images)")
                cell, predictions[cell.label] = with_predictions(cell, files, images, labels, options)
            done += options.accuracy
            cells.append(cell)
        tell(total, total, "done")
    cells, reference = score(cells, predictions, labels)
    cells = mark_best(cells, options)
    env = host_environment()
    return Matrix(str(source), files.kind, options.batch, tuple(cells), reference,
                  0 if images is None else len(images), labels is not None, image_source,
                  options.max_accuracy_drop, options.budget_ms, tuple(notes), env)
