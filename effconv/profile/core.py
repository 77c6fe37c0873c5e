"""Static profile of an ONNX graph: per-layer Mult-Adds and parameters, grouped by layer type.

Parameters are float constants (initializers or Constant nodes) read by a node, each counted once
by its first reader, even when shared, listed as a graph input too, or reached through Identity.
`weights` excludes biases and normalization parameters (the paper's "Parameters" column).
"""

from __future__ import annotations

from collections import Counter

from effconv.errors import InvalidInputError, UsageError
from effconv.profile.costmodel import paper_notes
from effconv.profile.graph import SUBGRAPH_OPS, Graph
from effconv.profile.handlers import HANDLERS, PARAM_ROLES, OpCost, ShapeUnknown, zero
from effconv.profile.layer_types import layer_type
from effconv.profile.model import (  # noqa: F401 (re-exported)
    CONVENTIONS, SCHEMA_VERSION, LayerCost, ModelProfile, Totals, TypeCost, _pct,
)

ROLES = ("weights", "biases", "norm_params", "other_params")


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
