"""What the deployment matrix holds: one Cell per (backend, precision), and the Matrix around them
(the reference cell, the accuracy images, the limits, the machine), with the int8/fp32 ratios."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

@dataclass(frozen=True)
class Cell:
    backend: str
    precision: str  # the column: fp32 | fp16 | bf16 | int8
    status: str  # ok | skipped | failed
    reason: str | None = None
    file: str | None = None
    ran: str | None = None  # the precision the runtime reports it ran, when it says
    median_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    cv: float | None = None
    iterations: int | None = None
    throughput: float | None = None  # images per second (batch / median)
    file_bytes: int | None = None
    weight_bytes: int | None = None
    mult_adds: int | None = None
    accuracy: float | None = None  # 0-1 on labelled images
    agreement: float | None = None  # top-1 agreement with the reference cell, 0-1
    accuracy_on: str | None = None  # the runtime that computed the answers
    drop_points: float | None = None
    best: bool = False
    runtime: str | None = None

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclass(frozen=True)
class Matrix:
    source: str
    kind: str  # run | onnx
    batch: int
    cells: tuple[Cell, ...]
    reference: str | None  # "ort-cpu fp32"
    images: int  # accuracy images (0: not measured)
    labelled: bool
    image_source: str | None
    max_accuracy_drop: float
    budget_ms: float | None
    notes: tuple[str, ...]
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Cell | None:
        return next((c for c in self.cells if c.best), None)

    def ratios(self) -> dict[str, float]:
        """int8 median / fp32 median per backend, measured in this run."""
        out = {}
        for c in self.cells:
            f = self.cell(c.backend, "fp32")
            if c.precision == "int8" and c.median_ms and f is not None and f.median_ms:
                out[c.backend] = c.median_ms / f.median_ms
        return out

    def cell(self, backend: str, precision: str) -> Cell | None:
        return next((c for c in self.cells if (c.backend, c.precision) == (backend, precision) and c.status == "ok"),
                    None)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["best"] = self.best.label if self.best else None
        doc["int8_fp32_latency_ratio"] = self.ratios()
        return doc
