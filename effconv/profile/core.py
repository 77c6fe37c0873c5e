"""Static profile of an ONNX graph: per-layer Mult-Adds and parameters, grouped by layer type.

Parameters are float constants (initializers or Constant nodes) read by a node, each counted once
by its first reader, even when shared, listed as a graph input too, or reached through Identity.
`weights` excludes biases and normalization parameters (the paper's "Parameters" column).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from effconv.errors import InvalidInputError, UsageError
from effconv.profile.costmodel import paper_notes
from effconv.profile.graph import SUBGRAPH_OPS, Graph, Shape
from effconv.profile.handlers import HANDLERS, PARAM_ROLES, OpCost, ShapeUnknown, zero
from effconv.profile.layer_types import layer_type

SCHEMA_VERSION = 1
CONVENTIONS = ("paper", "all")
ROLES = ("weights", "biases", "norm_params", "other_params")


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
            "notes": list(self.notes),
        }


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _node_params(node, g: Graph, seen: set[str]) -> dict[str, int]:
    counts = dict.fromkeys(ROLES, 0)
    if node.op_type in ("Identity", "Constant"):  # forwarders: the real reader counts the tensor
        return counts
    roles = PARAM_ROLES.get(node.op_type, {})
    for i, name in enumerate(node.input):
        root = g.root(name)
        p = g.params.get(root)
        if p is None or not p.is_float or root in seen:
            continue
        seen.add(root)
        counts[roles.get(i, "other_params")] += p.size
    return counts


def _zero_cost_branches(node) -> bool:
    """True when every node of every subgraph (recursively) is a declared zero-cost op."""
    for a in node.attribute:
        for g in [a.g] if a.HasField("g") else list(a.graphs):
            for sub in g.node:
                if sub.op_type == "If" and _zero_cost_branches(sub):
                    continue
                if sub.domain not in ("", "ai.onnx") or HANDLERS.get(sub.op_type) is not zero:
                    return False
    return True


def _cost(node, g: Graph, unsupported: Counter) -> OpCost:
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    handler = HANDLERS.get(op)
    if node.op_type == "If" and _zero_cost_branches(node):
        return OpCost(0)  # every branch only moves data (e.g. torch's LRN export): 0 either way
    if node.op_type in SUBGRAPH_OPS:
        unsupported[f"{op} (subgraph not counted)"] += 1
    elif handler is None:
        unsupported[op] += 1
    else:
        try:
            return handler(node, g)
        except ShapeUnknown:
            unsupported[f"{op} (shape unknown)"] += 1
    return OpCost(0)


def profile_graph(g: Graph, model: str, *, convention: str = "paper", strict: bool = False) -> ModelProfile:
    """Count every node of `g`; unsupported ops are listed (and an error when `strict`)."""
    if convention not in CONVENTIONS:
        raise UsageError(f"--convention {convention!r}: choose one of {', '.join(CONVENTIONS)}")
    seen: set[str] = set()
    unsupported: Counter = Counter()
    layers = []
    for i, node in enumerate(g.nodes):
        cost = _cost(node, g, unsupported)
        params = _node_params(node, g, seen)
        out = g.shapes.get(node.output[0]) if node.output else None
        layers.append(LayerCost(
            name=node.name or f"{node.op_type}_{i}", op_type=node.op_type, type=layer_type(node, g),
            output_shape=out if out is not None else cost.output_shape,
            mult_adds=cost.mult_adds + (cost.extra if convention == "all" else 0),
            inputs=tuple(node.input), outputs=tuple(node.output), **params,
        ))
    if strict and unsupported:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(unsupported.items()))
        raise InvalidInputError(f"unsupported ops (--strict): {listed}", path=g.path)
    totals = Totals(
        mult_adds=sum(lc.mult_adds for lc in layers), nodes=len(layers),
        **{r: sum(getattr(lc, r) for lc in layers) for r in ROLES},
    )
    by_type = _by_type(layers, totals)
    return ModelProfile(
        model=model, input_shapes=dict(g.inputs), convention=convention, layers=tuple(layers),
        by_type=by_type, totals=totals, unsupported=dict(sorted(unsupported.items())), onnx_path=g.path,
        notes=paper_notes(totals.mult_adds, totals.weights, by_type),
    )


def _by_type(layers: list[LayerCost], totals: Totals) -> tuple[TypeCost, ...]:
    acc: dict[str, list[int]] = {}
    for lc in layers:
        row = acc.setdefault(lc.type, [0, 0, 0])
        row[0] += lc.mult_adds
        row[1] += lc.weights
        row[2] += 1
    rows = [
        TypeCost(t, ma, _pct(ma, totals.mult_adds), w, _pct(w, totals.weights), n)
        for t, (ma, w, n) in acc.items()
    ]
    rows.sort(key=lambda r: (-r.mult_adds, -r.weights))  # stable: ties keep graph order
    return tuple(rows)
