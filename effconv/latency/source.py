"""What `effconv latency` times: an ONNX file, a zoo model (name or .toml spec), or a training run
(a run folder or checkpoint, loaded with effconv.training.checkpoint.load_run: weights_only, never pickle).
Zoo models and runs are exported to ONNX in a temporary folder for the ONNX backends."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effconv.errors import UsageError

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class ModelInput:
    name: str
    onnx_path: Path | None  # valid inside the `with` block that produced it
    build: Callable[[], Any] | None  # returns the torch nn.Module; None for ONNX files
    input_shape: tuple[int, ...] | None  # batch included; None when only the ONNX file knows it

    @property
    def kind(self) -> str:
        """Preferred backend kind: an ONNX file can only run on ONNX backends."""
        return "torch" if self.onnx_path is None else "onnx"


def _is_run(source: Path) -> bool:
    return source.is_dir() and not source.suffix == ".toml" or source.suffix in CHECKPOINT_SUFFIXES


@contextlib.contextmanager
def model_input(source: str | Path, batch: int, *, need_onnx: bool = True,
                input_shapes=None) -> Iterator[ModelInput]:
    """`input_shapes` ((name, dims), ...: --input-shape): a zoo model is exported at that shape; an
    ONNX file is read as it is (the measurement applies them); a run refuses them."""
    path = Path(source)
    if _is_run(path):
        if input_shapes:
            raise UsageError(f"{path}: --input-shape applies to ONNX files and zoo models; a run is timed at its "
                             "spec's input shape (set the batch with --batch)")
        yield from _run_input(path, batch, need_onnx)
        return
    from effconv.profile.source import onnx_source

    with onnx_source(source, batch=batch, input_shapes=dict(input_shapes) if input_shapes else None) as src:
        if src.module is None:
            yield ModelInput(src.model, src.path, None, None)
        else:
            module = src.module
            yield ModelInput(src.model, src.path, lambda: module, tuple(src.input_shape))


def _run_input(path: Path, batch: int, need_onnx: bool) -> Iterator[ModelInput]:
    try:
        from effconv.training.checkpoint import load_run
    except ImportError as exc:
        raise UsageError(f"{path}: timing a training run needs effconv.training.checkpoint ({exc})") from exc
    run = load_run(path)
    shape = tuple(run.spec.input_shape(batch))
    if not need_onnx:
        yield ModelInput(run.spec.name, None, lambda: run.model, shape)
        return
    from effconv.export.onnx import export_onnx

    with tempfile.TemporaryDirectory(prefix="effconv-latency-") as tmp:
        onnx_path = export_onnx(run.model, Path(tmp) / f"{run.spec.name}.onnx", shape)
        yield ModelInput(run.spec.name, onnx_path, lambda: run.model, shape)
