"""The choice of the best cell: agreement with the reference cell and each cell's drop (points),
the fastest median within --max-accuracy-drop and --budget-ms, and the verdict (exit 1 when a
budget was given and no cell meets it)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from effconv.deploy.plan import DeployOptions
from effconv.deploy.result import Cell, Matrix
from effconv.errors import CheckFailedError

def score(cells: list[Cell], predictions: dict, labels) -> tuple[list[Cell], str | None]:
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


def mark_best(cells: list[Cell], options: DeployOptions) -> list[Cell]:
    ok = [c for c in cells if c.status == "ok" and c.median_ms is not None
          and (c.drop_points is None or c.drop_points <= options.max_accuracy_drop)
          and (options.budget_ms is None or c.median_ms <= options.budget_ms)]
    if not ok:
        return cells
    best = min(ok, key=lambda c: c.median_ms)
    return [replace(c, best=True) if c is best else c for c in cells]


def check_matrix(matrix: Matrix) -> None:
    """Exit 1 when a budget was given and no cell meets it within the accuracy drop."""
    if matrix.budget_ms is not None and matrix.best is None:
        raise CheckFailedError(f"{matrix.source}: no cell within {matrix.budget_ms:g} ms and "
                               f"{matrix.max_accuracy_drop:g} points of accuracy drop")
