"""What an export produced: the files, the checks and the parity results (shared by the fp32/fp16
path in effconv.export.api and the int8 path in effconv.export.int8, so neither imports the other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effconv.export.onnx import OnnxCheck
from effconv.export.parity import ParityResult


@dataclass(frozen=True)
class ExportResult:
    source: str
    files: tuple[Path, ...]  # everything written, in the order it was moved into place
    onnx_path: Path
    engine_path: Path | None
    check: OnnxCheck
    parity: tuple[ParityResult, ...]  # ONNX Runtime, then TensorRT for engines
    metadata: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    int8: Any = None  # effconv.export.int8.Int8Check for int8 ONNX exports

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "files": [str(p) for p in self.files],
            "onnx": str(self.onnx_path),
            "engine": str(self.engine_path) if self.engine_path else None,
            "check": {"opset": self.check.opset, "nodes": self.check.nodes,
                      "inputs": {k: list(v) for k, v in self.check.inputs.items()},
                      "outputs": {k: list(v) for k, v in self.check.outputs.items()},
                      "external_data": self.check.external_data},
            "parity": [p.to_dict() for p in self.parity],
            "metadata": self.metadata,
            "seconds": self.seconds,
            "int8_check": self.int8.to_dict() if self.int8 is not None else None,
        }
