"""The paper's cost analysis of depthwise separable convolution, and its MobileNet table.

Symbols as the paper uses them (section III): F x F the feature map, N input channels, M output
channels, K x K the kernel. Standard convolution costs F^2 N K^2 M Mult-Adds; depthwise F^2 N K^2
plus pointwise F^2 N M. The ratio is 1/M + 1/K^2 (the paper prints 1/N + 1/D_K^2, with N standing
for the output channels as in the MobileNet paper's notation; with its own roles of N and M the
first term is 1/M). One fused multiply-add counts 1; F is the output feature map size (stride 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# MobileNet v1, width 1.0, 224x224, 1000 classes, batch 1 (ARCHITECTURE.md, "The MobileNet table").
MOBILENET_MULT_ADDS = 568_740_352
MOBILENET_WEIGHTS = 4_209_088
MOBILENET_STEM_MULT_ADDS = 10_838_016  # 112 * 112 * 32 * 3 * 3 * 3
# The paper's Table 2 as printed: type -> (Mult-Adds %, parameters %).
PAPER_TABLE: Mapping[str, tuple[float, float]] = {
    "Conv 1x1": (94.86, 74.59),
    "Conv DW 3x3": (3.06, 1.06),
    "Conv 3x3": (1.19, 0.02),
    "Fully Connected": (0.18, 24.33),
}


@dataclass(frozen=True)
class SeparableCost:
    """Mult-Adds and weights of one layer, standard against depthwise separable."""

    F: int
    N: int
    M: int
    K: int
    standard: int  # F^2 N K^2 M
    depthwise: int  # F^2 N K^2
    pointwise: int  # F^2 N M
    standard_weights: int  # K^2 N M
    separable_weights: int  # K^2 N + N M

    @property
    def separable(self) -> int:
        return self.depthwise + self.pointwise

    @property
    def ratio(self) -> float:
        """separable / standard, computed from the counts."""
        return self.separable / self.standard

    @property
    def ratio_closed_form(self) -> float:
        """1/M + 1/K^2: equal to `ratio` exactly."""
        return 1 / self.M + 1 / self.K**2


def separable_cost(F: int, N: int, M: int, K: int) -> SeparableCost:
    """The paper's formulas for a layer with F x F outputs, N in, M out channels, K x K kernel."""
    for sym, v in (("F", F), ("N", N), ("M", M), ("K", K)):
        if v <= 0:
            from effconv.errors import UsageError

            raise UsageError(f"{sym} must be a positive integer, got {v}")
    return SeparableCost(
        F, N, M, K,
        standard=F * F * N * K * K * M,
        depthwise=F * F * N * K * K,
        pointwise=F * F * N * M,
        standard_weights=K * K * N * M,
        separable_weights=K * K * N + N * M,
    )


def paper_notes(total_mult_adds: int, total_weights: int, by_type: Sequence) -> tuple[str, ...]:
    """The note printed beside the MobileNet table, when the profile is the paper's model."""
    if (total_mult_adds, total_weights) != (MOBILENET_MULT_ADDS, MOBILENET_WEIGHTS):
        return ()
    printed = sum(v[0] for v in PAPER_TABLE.values())
    ours = {t.type: t.mult_adds_pct for t in by_type}.get("Conv 3x3", 0.0)
    return (
        f"The paper prints {PAPER_TABLE['Conv 3x3'][0]:.2f}% for Conv 3x3; {ours:.2f}% is right "
        f"(its column would sum to {printed:.2f}%; the stem conv is {MOBILENET_STEM_MULT_ADDS:,} Mult-Adds).",
    )
