"""Output parity: the exported model against the PyTorch model it came from, on the same inputs.

Conventions (every number in the report):
- `max_abs_err`: max over all logits of |exported - torch|.
- `max_rel_err`: max over images of max |exported - torch| / max |torch| of that image (norm-wise
  relative error; per-logit ratios explode on logits near zero and say nothing about the model).
- A logit is within tolerance when |exported - torch| <= atol + rtol * max |torch logit of the same
  image|. This is numpy.allclose's rule with the image's logit scale in place of the logit itself:
  a reduced-precision model errs in proportion to the scale of the whole computation, and a logit
  near zero has the same absolute error as its neighbours. The check passes when every logit of
  every input set is within tolerance.
- `top1_agreement`: the fraction of images whose arg-max class is the same in both.

Default tolerances per precision of the exported model (the reference is always float32 PyTorch):
- fp32: rtol 1e-3, atol 1e-4 (the same arithmetic in another order: measured errors over the zoo's
  fresh models are below 1e-6 relative).
- fp16: rtol 1e-2, atol 1e-4. float16 keeps 11 significant bits (unit roundoff 4.9e-4); the
  measured max_rel_err of all 24 zoo specs (fresh seed-0 weights, 4 random + 4 real images,
  `effconv export NAME --precision fp16 --parity-images 4`, ONNX Runtime 1.32 CPU) is
  1.4e-4..4.5e-4, so 1e-2 leaves a 20x margin for deeper or trained models while a broken
  conversion (errors of order 1) still fails. atol only guards all-zero outputs.
- int8 (TensorRT only): rtol 1e-1, atol 1e-2: a starting point, not measured (no TensorRT where
  effconv is developed); top-1 agreement is the figure to read. Override with --rtol/--atol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from effconv.errors import CheckFailedError

TOLERANCES = {"fp32": (1e-3, 1e-4), "fp16": (1e-2, 1e-4), "int8": (1e-1, 1e-2)}
TORCH_BATCH = 256  # images per PyTorch forward pass while computing references
PARITY_IMAGES = 16  # --parity-images default for fp32/fp16 (int8 ONNX: effconv.export.int8.CHECK_IMAGES)


@dataclass(frozen=True)
class ParitySet:
    """One set of inputs: `name` is "random" (seeded standard normal) or "cifar10-test"."""

    name: str
    images: int
    max_abs_err: float
    max_rel_err: float
    outside_tolerance: int  # logits beyond atol + rtol * (the image's max |torch logit|)
    top1_agreement: float


@dataclass(frozen=True)
class ParityResult:
    runtime: str  # e.g. "onnxruntime 1.32.0 CPUExecutionProvider"
    precision: str
    rtol: float
    atol: float
    sets: tuple[ParitySet, ...]
    reference: str = "PyTorch"  # what the outputs are compared with (an ONNX source: ONNX Runtime CPU)

    @property
    def passed(self) -> bool:
        """No output outside tolerance, on at least one image: zero images prove nothing."""
        return sum(s.images for s in self.sets) > 0 and all(s.outside_tolerance == 0 for s in self.sets)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


class ParityError(CheckFailedError):
    """Parity beyond tolerance (exit 1); `result` holds the numbers for the report."""

    def __init__(self, message: str, result: ParityResult, *, path=None) -> None:
        super().__init__(message, path=path)
        self.result = result


def tolerances(precision: str, rtol: float | None = None, atol: float | None = None) -> tuple[float, float]:
    default_rtol, default_atol = TOLERANCES[precision]
    return (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)


def random_inputs(n: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """`n` seeded standard-normal images (float32 NCHW): the scale of normalized real images."""
    return np.random.default_rng(seed).standard_normal((n, *shape), dtype=np.float32)


def compare(name: str, ref: np.ndarray, out: np.ndarray, rtol: float, atol: float) -> ParitySet:
    """Score `out` against the float32 reference `ref` (both [N, classes], N >= 1)."""
    ref = ref.astype(np.float64)
    diff = np.abs(out.astype(np.float64) - ref)
    img_err, scale = diff.max(axis=1), np.abs(ref).max(axis=1)  # per image; scale: its logit scale
    rel = np.divide(img_err, scale, out=np.where(img_err > 0, np.inf, 0.0), where=scale > 0)
    return ParitySet(
        name=name,
        images=int(ref.shape[0]),
        max_abs_err=float(diff.max()),
        max_rel_err=float(rel.max()),
        outside_tolerance=int(np.count_nonzero(diff > atol + rtol * scale[:, None])),
        top1_agreement=float(np.mean(ref.argmax(1) == out.argmax(1))),
    )


def torch_outputs(model, images: np.ndarray) -> np.ndarray:
    """Float32 logits of the PyTorch model in eval mode, in batches of TORCH_BATCH."""
    import torch

    model = model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(images), TORCH_BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + TORCH_BATCH]))
            outs.append(model(batch).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def run_parity(model, runner: Callable[[np.ndarray], np.ndarray], sets: Sequence[tuple[str, np.ndarray]],
               *, runtime: str, precision: str, rtol: float, atol: float) -> ParityResult:
    """Feed every input set to PyTorch and to `runner` (the exported model); compare."""
    return compare_runners(lambda x: torch_outputs(model, x), runner, sets, runtime=runtime, precision=precision,
                           rtol=rtol, atol=atol)


def compare_runners(reference: Callable[[np.ndarray], np.ndarray], runner: Callable[[np.ndarray], np.ndarray],
                    sets: Sequence[tuple[str, np.ndarray]], *, runtime: str, precision: str, rtol: float,
                    atol: float, reference_name: str = "PyTorch") -> ParityResult:
    """Feed every input set to `reference` (float32 logits) and to `runner`; compare."""
    scored = tuple(compare(name, reference(x), runner(x), rtol, atol) for name, x in sets if len(x))
    return ParityResult(runtime=runtime, precision=precision, rtol=rtol, atol=atol, sets=scored,
                        reference=reference_name)


def ort_runner(path: str | Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A function running the ONNX model on ONNX Runtime's CPU provider, batch by batch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the CPU provider notes fp16 fallbacks as warnings
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    batch = inp.shape[0] if isinstance(inp.shape[0], int) else TORCH_BATCH
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def run(images: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch].astype(dtype)
            real = len(chunk)
            if real < batch and isinstance(inp.shape[0], int):  # a fixed batch: pad, then drop
                chunk = np.concatenate([chunk, np.zeros((batch - real, *chunk.shape[1:]), dtype)])
            outs.append(session.run(None, {inp.name: chunk})[0][:real].astype(np.float32))
        return np.concatenate(outs)

    return run, f"onnxruntime {ort.__version__} CPUExecutionProvider"


def check_onnx_parity(model, path: str | Path, sets, *, precision: str, rtol: float | None = None,
                      atol: float | None = None) -> ParityResult:
    """Parity of an ONNX file on ONNX Runtime CPU; raise ParityError beyond tolerance."""
    rtol, atol = tolerances(precision, rtol, atol)
    runner, runtime = ort_runner(path)
    result = run_parity(model, runner, sets, runtime=runtime, precision=precision, rtol=rtol, atol=atol)
    raise_if_failed(result, path)
    return result


def raise_if_failed(result: ParityResult, path) -> None:
    if result.passed:
        return
    worst = max(result.sets, key=lambda s: s.outside_tolerance)
    raise ParityError(
        f"parity check failed on {result.runtime}: {worst.outside_tolerance} logits of {worst.name} "
        f"images beyond rtol {result.rtol:g} / atol {result.atol:g} (max abs err "
        f"{worst.max_abs_err:.3g}, top-1 agreement {worst.top1_agreement:.2%}); file not written",
        result,
        path=path,
    )
