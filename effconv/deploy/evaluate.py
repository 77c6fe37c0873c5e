"""Predictions of an ONNX file on real images, computed by the runtime of a matrix cell.

`EVALUATORS` maps a backend name to a function (path, precision, images) -> logits, run at the
precision the cell was timed at (OpenVINO's inference precision hint: bf16 changes the answers).
A backend without an entry is evaluated on ONNX Runtime CPU, and the cell says so
(`accuracy_on`): its timing is still its own, its accuracy is then the file's. Evaluation runs in
a limited child process (effconv.sandbox) because the files can come from anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from effconv.errors import UsageError

FALLBACK = "ort-cpu"
BATCH = 256  # images per inference when the model's batch is dynamic
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}  # int8: the QDQ file, rest f32


def ort_cpu_logits(path: str, precision: str, images: np.ndarray) -> np.ndarray:
    from effconv.export.parity import ort_runner

    if precision not in ("fp32", "int8"):
        raise UsageError(f"ort-cpu evaluates fp32 and int8 files, not {precision}")
    run, _ = ort_runner(path)
    return run(images)


def openvino_logits(path: str, precision: str, images: np.ndarray) -> np.ndarray:
    """OpenVINO on CPU with the inference precision forced as the cell's (f32 for fp32 and for the
    non-quantized rest of an int8 QDQ file), so the answers are those of the timed configuration."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": OV_PRECISION[precision]})
    shape = compiled.input(0).get_partial_shape()
    batch = shape[0].get_length() if shape[0].is_static else BATCH
    request = compiled.create_infer_request()
    outs = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        real = len(chunk)
        if real < batch and shape[0].is_static:
            chunk = np.concatenate([chunk, np.zeros((batch - real, *chunk.shape[1:]), chunk.dtype)])
        request.infer({0: np.ascontiguousarray(chunk)})
        outs.append(np.array(request.get_output_tensor(0).data)[:real].astype(np.float32))
    return np.concatenate(outs)


EVALUATORS: dict[str, Callable[[str, str, np.ndarray], np.ndarray]] = {
    "ort-cpu": ort_cpu_logits,
    "openvino": openvino_logits,
}


def evaluator_for(backend: str) -> str:
    """The backend whose evaluator answers for `backend`'s cells."""
    return backend if backend in EVALUATORS else FALLBACK


def predictions_in_child(backend: str, path: str, precision: str, images: np.ndarray) -> list[int]:
    """The child's side: top-1 class per image (plain data for the pipe)."""
    logits = EVALUATORS[evaluator_for(backend)](path, precision, images)
    return [int(v) for v in np.asarray(logits).argmax(1)]


def evaluate(backend: str, path: Path, precision: str, images: np.ndarray, limits) -> tuple[np.ndarray, str]:
    """Top-1 predictions of `path` for `images` on `backend`'s evaluator, in a limited child;
    returns them and the evaluator's name."""
    from effconv.sandbox import run_in_child

    preds = run_in_child(predictions_in_child, (backend, str(path), precision, images), None, limits,
                         label=str(path))
    return np.asarray(preds, dtype=np.int64), evaluator_for(backend)
