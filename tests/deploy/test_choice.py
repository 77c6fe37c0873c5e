"""effconv.deploy.choice: agreement and drop against the reference cell, the best cell, the verdict.

Oracle: cells and predictions written out by hand, the expected agreement, drops and best cell
worked out from the rules in effconv.deploy.matrix's docstring.
"""

from __future__ import annotations

import numpy as np
import pytest

from effconv.deploy.choice import check_matrix, mark_best, score
from effconv.deploy.plan import DeployOptions
from effconv.deploy.result import Cell, Matrix
from effconv.errors import CheckFailedError

LABELS = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])


def _cells():
    return [Cell("ort-cpu", "fp32", "ok", median_ms=2.0, accuracy=0.9),
            Cell("ort-cpu", "int8", "ok", median_ms=1.0, accuracy=0.8),
            Cell("openvino", "int8", "ok", median_ms=0.5, accuracy=0.6),
            Cell("openvino", "fp16", "skipped", reason="CPU runs no fp16")]


PREDICTIONS = {  # 9, 8 and 6 of the 10 labels right; agreement with fp32: 9/10 and 7/10
    "ort-cpu fp32": np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0]),
    "ort-cpu int8": np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 0]),
    "openvino int8": np.array([0, 1, 2, 3, 4, 5, 0, 0, 0, 0]),
}


def test_drop_and_agreement_against_the_fp32_reference():
    cells, reference = score(_cells(), PREDICTIONS, LABELS)
    assert reference == "ort-cpu fp32"
    got = {c.label: (c.agreement, c.drop_points) for c in cells}
    assert got["ort-cpu fp32"] == (1.0, 0.0)
    assert got["ort-cpu int8"][0] == 0.9 and got["ort-cpu int8"][1] == pytest.approx(10.0)
    assert got["openvino int8"][0] == 0.7 and got["openvino int8"][1] == pytest.approx(30.0)
    assert got["openvino fp16"] == (None, None)


def test_without_labels_the_drop_is_the_disagreement():
    cells, _ = score(_cells(), PREDICTIONS, None)
    assert {c.label: c.drop_points for c in cells if c.drop_points is not None} == pytest.approx(
        {"ort-cpu fp32": 0.0, "ort-cpu int8": 10.0, "openvino int8": 30.0})


@pytest.mark.parametrize("max_drop, budget, best", [
    (1.0, None, "ort-cpu fp32"),  # only the reference keeps accuracy
    (15.0, None, "ort-cpu int8"),  # the fastest within 15 points
    (50.0, None, "openvino int8"),
    (50.0, 0.4, None),  # nothing is that fast
])
def test_the_best_cell_is_the_fastest_within_both_limits(max_drop, budget, best):
    cells, reference = score(_cells(), PREDICTIONS, LABELS)
    cells = mark_best(cells, DeployOptions(max_accuracy_drop=max_drop, budget_ms=budget))
    assert [c.label for c in cells if c.best] == ([best] if best else [])
    matrix = Matrix("m.onnx", "onnx", 1, tuple(cells), reference, 10, True, "test", max_drop, budget, ())
    if best is None:
        with pytest.raises(CheckFailedError, match="no cell within 0.4 ms and 50 points"):
            check_matrix(matrix)
    else:
        assert matrix.best.label == best
        check_matrix(matrix)  # a best cell (or no budget): no verdict to fail
