"""Static profile of any ONNX model: per-layer Mult-Adds and parameters in the paper's layer types.

Pipeline: read.py (read and refuse what is unsafe) -> graph.py (check, infer shapes) ->
propagate.py + fold.py (fold small constants and infer node by node) -> handlers.py / quantized.py
(Mult-Adds per op type) -> consts.py (which tensors are weights) -> layer_types.py (paper
vocabulary) -> memory.py (live activations) -> core.py (per layer, per type, totals) -> report.py
(tables, JSON, CSV, Markdown, plots). Library entry points: `profile_onnx` (a file),
`profile_model` (a file or a zoo model); `effconv.profile.api.run_profile` is what the command runs.

Importing this package loads no onnx: `model.py` (the profile as data) stays cheap for the CLI
process, which only renders what its isolated child computed. The other names are imported on first
use (the sandbox worker imports this package first: every module here is on its critical path).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from effconv.profile.model import CONVENTIONS, LayerCost, ModelProfile, Totals, TypeCost, parse_input_shape

if TYPE_CHECKING:
    from effconv.profile.source import OnnxSource

__all__ = [
    "CONVENTIONS", "LayerCost", "ModelProfile", "Totals", "TypeCost",
    "load_graph", "onnx_source", "parse_input_shape", "profile_graph", "profile_model", "profile_onnx",
    "profile_source", "OnnxSource",
]

_LAZY = {"load_graph": "effconv.profile.graph", "profile_graph": "effconv.profile.core",
         "onnx_source": "effconv.profile.source", "OnnxSource": "effconv.profile.source"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'effconv.profile' has no attribute {name!r}")


def profile_onnx(
    path: str | Path,
    *,
    model: str | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    batch: int | None = None,
    convention: str = "paper",
    strict: bool = False,
) -> ModelProfile:
    """Profile one ONNX file (no torch involved)."""
    from effconv.profile.core import profile_graph
    from effconv.profile.graph import load_graph

    graph = load_graph(path, input_shapes=input_shapes, batch=batch)
    return profile_graph(graph, model or Path(path).name, convention=convention, strict=strict)


def profile_model(
    source: str | Path,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    batch: int | None = None,
    convention: str = "paper",
    strict: bool = False,
) -> ModelProfile:
    """Profile an ONNX file, a zoo name or a spec file (zoo models are exported to a temporary
    ONNX file first; the profile's `onnx_path` then names a file that no longer exists)."""
    from effconv.profile.source import onnx_source

    with onnx_source(source, input_shapes=input_shapes, batch=batch) as src:
        return profile_source(src, input_shapes=input_shapes, batch=batch, convention=convention, strict=strict)


def profile_source(src: OnnxSource, *, input_shapes=None, batch=None, convention="paper", strict=False):
    """Profile what `onnx_source` yielded (zoo exports already have static shapes)."""
    import dataclasses

    if src.spec is not None:
        prof = profile_onnx(src.path, model=src.model, convention=convention, strict=strict)
        notes = prof.notes
        if src.module is not None:
            from effconv.profile.reconcile import reconcile

            notes = (*notes, reconcile(src.module, prof, src.input_shape, src.path))
        return dataclasses.replace(prof, temporary_onnx=True, notes=notes)
    return profile_onnx(src.path, model=src.model, input_shapes=input_shapes, batch=batch,
                        convention=convention, strict=strict)
