"""The deployment matrix: every ONNX backend available here x precision (fp32, fp16, bf16, int8) ->
latency (the latency stage's timing loop), size, Mult-Adds, accuracy; the fastest cell that keeps
accuracy and fits the budget. `deploy_matrix(source, DeployOptions())` is the one entry point;
effconv.deploy.report writes it as JSON, CSV, Markdown and a latency-vs-accuracy plot.

Nothing heavy is imported here: the names load from their modules on first use.
"""

from __future__ import annotations

import importlib

_LAZY = {
    **dict.fromkeys(("deploy_matrix", "check_matrix"), "effconv.deploy.matrix"),
    **dict.fromkeys(("DeployOptions", "PRECISIONS"), "effconv.deploy.plan"),
    **dict.fromkeys(("Cell", "Matrix"), "effconv.deploy.result"),
    **dict.fromkeys(("EVALUATORS", "evaluate"), "effconv.deploy.evaluate"),
    **dict.fromkeys(("matrix_csv", "matrix_markdown", "plot_matrix", "write_outputs"), "effconv.deploy.report"),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'effconv.deploy' has no attribute {name!r}")
