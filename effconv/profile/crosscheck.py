"""Independent oracle: fvcore's FlopCountAnalysis on the PyTorch module against the ONNX count.

Both count one fused multiply-add as one. What must agree: the ONNX paper-convention count
(Conv, ConvTranspose, Gemm, MatMul) and fvcore's conv + linear + matmul-like operators. Every
other fvcore category is a *gap* with its reason (batch norm folded in the ONNX, pooling and
upsampling outside the paper convention); ops fvcore skips are listed too. torch is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MATCHED = ("conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm")
REASONS: Mapping[str, str] = {
    "batch_norm": "fvcore counts batch norm; the ONNX export folds it into the convolutions",
    "group_norm": "normalization: not counted by the paper convention",
    "layer_norm": "normalization: not counted by the paper convention",
    "instance_norm": "normalization: not counted by the paper convention",
    "adaptive_avg_pool2d": "fvcore counts adaptive average pooling; the paper convention counts no pooling",
    "upsample_nearest2d": "fvcore counts upsampling; the paper convention counts no Resize",
    "upsample_bilinear2d": "fvcore counts upsampling; the paper convention counts no Resize",
}
OTHER_REASON = "not a convolution or matrix product: outside the paper convention"


@dataclass(frozen=True)
class GapRow:
    category: str  # fvcore operator name
    fvcore: int  # fvcore's count (one fused multiply-add = 1)
    onnx: int  # the ONNX paper-convention count of the same category (0 for gaps)
    reason: str


@dataclass(frozen=True)
class Crosscheck:
    model: str
    onnx_mult_adds: int  # Conv + ConvTranspose + Gemm + MatMul in the exported ONNX
    fvcore_matched: int  # fvcore conv + linear + matmul-like
    fvcore_total: int
    rows: tuple[GapRow, ...]
    fvcore_skipped: Mapping[str, int]  # aten ops fvcore has no counter for (it counts them 0)

    @property
    def ok(self) -> bool:
        return self.onnx_mult_adds == self.fvcore_matched


def fvcore_by_operator(module, input_shape: tuple[int, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """fvcore counts per operator, and the ops it skipped, for `module` on a zero input."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    module = module.eval()
    with torch.no_grad():
        fca = FlopCountAnalysis(module, torch.zeros(*input_shape))
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = {k: int(v) for k, v in fca.by_operator().items()}
        skipped = dict(fca.unsupported_ops())
    return by_op, skipped


def onnx_matmul_like(onnx_path: Path, model: str) -> tuple[int, int]:
    """(Conv + ConvTranspose Mult-Adds, Gemm + MatMul Mult-Adds) of an ONNX file, paper convention."""
    from effconv.profile import profile_onnx

    prof = profile_onnx(onnx_path, model=model)
    conv = sum(lc.mult_adds for lc in prof.layers if lc.op_type in ("Conv", "ConvTranspose"))
    fc = sum(lc.mult_adds for lc in prof.layers if lc.op_type in ("Gemm", "MatMul"))
    return conv, fc


def crosscheck(onnx_path: Path, module, input_shape: tuple[int, ...], model: str) -> Crosscheck:
    """Compare the ONNX count of `onnx_path` with fvcore on `module` (the source of that ONNX)."""
    by_op, skipped = fvcore_by_operator(module, input_shape)
    conv, fc = onnx_matmul_like(onnx_path, model)
    rows = [GapRow("conv", by_op.get("conv", 0), conv, "must agree: convolutions")]
    fv_fc = sum(by_op.get(k, 0) for k in MATCHED if k != "conv")
    rows.append(GapRow("linear+matmul", fv_fc, fc, "must agree: fully connected and matrix products"))
    for op, n in sorted(by_op.items()):
        if op not in MATCHED:
            rows.append(GapRow(op, n, 0, REASONS.get(op, OTHER_REASON)))
    return Crosscheck(
        model=model, onnx_mult_adds=conv + fc, fvcore_matched=by_op.get("conv", 0) + fv_fc,
        fvcore_total=sum(by_op.values()), rows=tuple(rows), fvcore_skipped=skipped,
    )

