"""The profile as data: per-layer and per-type costs, totals, and the JSON document they make.

No onnx import here: the CLI process rebuilds a ModelProfile from the JSON its isolated child sends
(`ModelProfile.from_dict`) and renders it without loading onnx or numpy (see effconv/cli/profile.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effconv.errors import UsageError

Dim = int | str | None  # int: known size; str: symbolic name; None: unknown
Shape = tuple[Dim, ...]

SCHEMA_VERSION = 1
CONVENTIONS = ("paper", "all")
ROLES = ("weights", "biases", "norm_params", "other_params")
# op_type of the nodes a lower-bound line counts among "nodes that may hold Mult-Adds"
COUNTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum", "QLinearConv", "ConvInteger",
                         "QLinearMatMul", "MatMulInteger", "QGemm", "FusedConv", "FusedGemm", "FusedMatMul",
                         "LSTM", "GRU", "RNN", "Attention", "If", "Loop", "Scan"})


@dataclass(frozen=True)
class LayerCost:
    name: str
    op_type: str
    type: str
    output_shape: Shape | None
    mult_adds: int
    weights: int
    biases: int
    norm_params: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    other_params: int = 0  # float constants in no known role (e.g. a Mul by a learned scale)
    param_bytes: int = 0  # stored bytes of the parameters this layer counts (their file data types)
    activation_bytes: int = 0  # bytes of the activations this layer writes (by their data types)


@dataclass(frozen=True)
class TypeCost:
    type: str
    mult_adds: int
    mult_adds_pct: float  # percent of the model's Mult-Adds
    weights: int
    weights_pct: float  # percent of the model's weights
    layers: int  # nodes of this type


@dataclass(frozen=True)
class Totals:
    mult_adds: int
    weights: int
    biases: int
    norm_params: int
    other_params: int = 0
    nodes: int = 0
    weight_bytes: Mapping[str, int] = field(default_factory=dict)  # stored parameter bytes by data type


@dataclass(frozen=True)
class Uncounted:
    """A node whose cost is not in the total (the total is then a lower bound)."""

    node: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class MemoryProfile:
    activation_bytes: int  # sum over every activation tensor (each counted once)
    peak_bytes: int  # peak live activations in the stored node order
    peak_node: str  # the node running at that peak
    best_peak_bytes: int  # peak in the best order found (<= peak_bytes)
    best_peak_node: str
    best_order: tuple[str, ...]  # node names, runtime nodes only (constants run at load)
    search: str  # how the best order was found, and whether the search stopped early
    input_bytes: int
    output_bytes: int
    complete: bool = True  # False: some activation has no static shape (the figures are lower bounds)
    unknown: tuple[str, ...] = field(default=())  # those activations
    timeline: tuple[int, ...] = ()  # live bytes while each runtime node runs, in stored order
    timeline_nodes: tuple[str, ...] = ()  # those nodes (constants, run at load, are not in it)

    @property
    def saving(self) -> float:
        """Share of the stored-order peak the best order saves (0..1)."""
        return 1 - self.best_peak_bytes / self.peak_bytes if self.peak_bytes else 0.0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d) -> MemoryProfile:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ModelProfile:
    model: str
    input_shapes: Mapping[str, tuple[int, ...]]
    convention: str
    layers: tuple[LayerCost, ...]
    by_type: tuple[TypeCost, ...]
    totals: Totals
    unsupported: Mapping[str, int]
    onnx_path: Path
    notes: tuple[str, ...] = field(default=())
    temporary_onnx: bool = False  # True for zoo models exported on the fly (onnx_path is then gone)
    complete: bool = True  # False: some node that may hold Mult-Adds was not counted (a lower bound)
    uncounted: tuple[Uncounted, ...] = ()
    memory: MemoryProfile | None = None

    def lower_bound_line(self) -> str | None:
        """The one line every output prints beside a total that is only a lower bound."""
        if self.complete:
            return None
        reasons = Counter(u.reason for u in self.uncounted)
        kinds = sum(1 for lc in self.layers if lc.op_type in COUNTED_OPS or lc.mult_adds)
        why = "; ".join(f"{r} x{n}" for r, n in reasons.most_common())
        return (f"LOWER BOUND: {len(self.uncounted)} of {max(kinds, len(self.uncounted))} nodes that may hold "
                f"Mult-Adds not counted ({why}); the true total is higher")

    def to_dict(self) -> dict:
        """The JSON document described in docs/profile-json-schema.md."""
        from effconv import __version__

        total, run = self.totals.mult_adds, 0
        layers = []
        for lc in self.layers:
            run += lc.mult_adds
            d = {k: getattr(lc, k) for k in LayerCost.__dataclass_fields__}
            d.update(
                output_shape=list(lc.output_shape) if lc.output_shape is not None else None,
                inputs=list(lc.inputs), outputs=list(lc.outputs),
                mult_adds_pct=_pct(lc.mult_adds, total), cumulative_pct=_pct(run, total),
            )
            layers.append(d)
        return {
            "schema_version": SCHEMA_VERSION,
            "effconv_version": __version__,
            "model": self.model,
            "onnx_path": None if self.temporary_onnx else str(self.onnx_path),
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "convention": self.convention,
            "totals": {k: getattr(self.totals, k) for k in Totals.__dataclass_fields__},
            "by_type": [{k: getattr(t, k) for k in TypeCost.__dataclass_fields__} for t in self.by_type],
            "layers": layers,
            "unsupported": dict(self.unsupported),
            "complete": self.complete,
            "memory": self.memory.to_dict() if self.memory is not None else None,
            "uncounted": [{k: getattr(u, k) for k in Uncounted.__dataclass_fields__} for u in self.uncounted],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, onnx_path: str | Path | None = None) -> ModelProfile:
        """Rebuild a profile from its JSON document (`to_dict()`): fields by name, lists back to
        tuples. `onnx_path` replaces the document's (which is null for zoo exports)."""
        def pick(kind, d):
            return {k: d[k] for k in kind.__dataclass_fields__ if k in d}

        def layer(d):
            shape = d.get("output_shape")
            return LayerCost(**{**pick(LayerCost, d), "output_shape": tuple(shape) if shape is not None else None,
                                "inputs": tuple(d["inputs"]), "outputs": tuple(d["outputs"])})

        path = onnx_path if onnx_path is not None else doc.get("onnx_path")
        return cls(
            model=doc["model"], convention=doc["convention"], onnx_path=Path(path or ""),
            input_shapes={k: tuple(v) for k, v in doc["input_shapes"].items()},
            layers=tuple(layer(d) for d in doc["layers"]),
            by_type=tuple(TypeCost(**pick(TypeCost, d)) for d in doc["by_type"]),
            totals=Totals(**pick(Totals, doc["totals"])), unsupported=dict(doc["unsupported"]),
            notes=tuple(doc.get("notes", ())), temporary_onnx=doc.get("onnx_path") is None and onnx_path is None,
            complete=doc.get("complete", True),
            uncounted=tuple(Uncounted(**pick(Uncounted, d)) for d in doc.get("uncounted", ())),
            memory=MemoryProfile.from_dict(doc["memory"]) if doc.get("memory") else None,
        )


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """`"input=1x3x224x224"` -> `("input", (1, 3, 224, 224))`; a bad value is a usage error."""
    m = re.fullmatch(r"\s*([^=]+?)\s*=\s*(\d+(?:\s*[x,]\s*\d+)*)\s*", text)
    if not m:
        raise UsageError(f"--input-shape {text!r}: expected NAME=DxDx... such as input=1x3x224x224")
    dims = tuple(int(d) for d in re.split(r"\s*[x,]\s*", m.group(2)))
    if any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape {text!r}: dimensions must be positive")
    return m.group(1), dims
