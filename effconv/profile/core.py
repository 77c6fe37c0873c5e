"""Static profile of an ONNX graph: per-layer Mult-Adds and parameters, grouped by layer type.

Parameters are the stored constants a node reads, directly or through a constant subgraph
(effconv.profile.consts): each counted once by its first reader, even when shared, listed as a graph
input too, or reached through Identity or DequantizeLinear. `weights` excludes biases and
normalization parameters (the paper's "Parameters" column).

Nothing is dropped silently: a node is counted, declared zero-cost, static (computed from constants
and folded shapes: it costs nothing at run time), or listed as unsupported. When a node that may
hold Mult-Adds is not counted, the total is a lower bound: `complete` is False and `uncounted`
says which nodes and why.
"""

from __future__ import annotations

from collections import Counter

from effconv.errors import InvalidInputError, UsageError
from effconv.profile.consts import FLOAT_TYPES, PARAM_ROLES, dtype_name, leaves
from effconv.profile.costmodel import paper_notes
from effconv.profile.einsum import EinsumError
from effconv.profile.graph import SUBGRAPH_OPS, Graph
from effconv.profile.handlers import HANDLERS, OpCost, ShapeMismatch, ShapeUnknown, zero
from effconv.profile.layer_types import layer_type
from effconv.profile.memory import activation_bytes, memory_profile
from effconv.profile.model import (  # noqa: F401 (re-exported)
    CONVENTIONS, SCHEMA_VERSION, LayerCost, ModelProfile, Totals, TypeCost, Uncounted, _pct,
)
from effconv.profile.quantized import QUANT_HANDLERS, QUANT_ROLES, SKIP

ROLES = ("weights", "biases", "norm_params", "other_params")
STANDARD = ("", "ai.onnx")
ALL_HANDLERS = {**HANDLERS, **QUANT_HANDLERS}
ALL_ROLES = {**PARAM_ROLES, **QUANT_ROLES}
# Ops whose Mult-Adds the paper convention counts, and ops that hide matrix products: when one of
# these is not counted, the total is a lower bound.
COUNTED_KINDS = frozenset(
    [op for op in ALL_HANDLERS if op in ("Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum")]
    + [op for op in QUANT_HANDLERS if "Conv" in op or "MatMul" in op or "Gemm" in op or "LSTM" in op]
    + ["LSTM", "GRU", "RNN", "DeformConv", "Attention", "com.microsoft.Attention", "com.microsoft.QAttention",
       "com.microsoft.MultiHeadAttention", "com.microsoft.GroupQueryAttention", "com.microsoft.NhwcConv"]
)
PARAMS_ANY_DTYPE = ("weights", "biases")  # int8 weights and int32 biases count; elsewhere floats only
# onnx.TensorProto INT8, UINT8, INT16, UINT16, INT32, INT4, UINT4: quantized weights and biases.
# Never INT64 (shapes, indices) or BOOL (masks).
QUANTIZED_TYPES = frozenset({3, 2, 5, 4, 6, 22, 21})


def op_key(node) -> str:
    return node.op_type if node.domain in STANDARD else f"{node.domain}.{node.op_type}"


def _node_params(node, g: Graph, seen: set[str], nbytes: Counter, static: bool) -> tuple[dict[str, int], int]:
    """Parameter elements per role, and their stored bytes (added to `nbytes` by data type)."""
    counts = dict.fromkeys(ROLES, 0)
    if static or not any(g.root(i) in g.consts for i in node.input if i):
        return counts, 0  # a constant subgraph (its runtime reader counts the tensor), or no constant read
    roles, layer_bytes = ALL_ROLES.get(op_key(node), {}), 0
    for i, name in enumerate(node.input):
        root = g.root(name) if name else ""
        role = roles.get(i, "other_params")
        if root not in g.consts or role == SKIP:
            continue
        if role not in PARAMS_ANY_DTYPE and g.types.get(root, _dtype(g, root)) not in FLOAT_TYPES:
            continue  # an int64 shape, an index, a boolean mask: not a parameter
        for leaf in leaves(root, g.params, g.made_by, g.types):
            p = g.params.get(leaf) or g.param(leaf)
            quantized = role in PARAMS_ANY_DTYPE and p is not None and p.dtype in QUANTIZED_TYPES
            if leaf in seen or p is None or not (p.is_float or quantized):
                continue
            if role == "other_params" and leaf not in g.params:
                continue  # made by a generator from a shape (x * eye(t)): a computed mask, no stored data
            seen.add(leaf)
            counts[role] += p.size
            nbytes[dtype_name(p.dtype)] += p.nbytes
            layer_bytes += p.nbytes
    return counts, layer_bytes


def _leftover_params(node, g: Graph, seen: set[str], nbytes: Counter, found: list) -> None:
    """Float constants that only nodes run at load time read (a scale folded into a shape, an
    unused branch's value): `other_params` of their first reader, so every float constant of the
    file is counted once. Scales and zero points of quantized tensors are still not parameters."""
    counts, roles = found[0], ALL_ROLES.get(op_key(node), {})
    for i, name in enumerate(node.input):
        p = g.params.get(g.root(name)) if name else None
        if p is None or p.name in seen or not p.is_float or roles.get(i) == SKIP:
            continue
        seen.add(p.name)
        counts["other_params"] += p.size
        nbytes[dtype_name(p.dtype)] += p.nbytes
        found[1] += p.nbytes


def _dtype(g: Graph, name: str) -> int:
    p = g.params.get(name)
    return p.dtype if p is not None else 0


def _subgraph_kinds(node) -> set[str]:
    """Op keys of every node in every subgraph of `node` (recursively)."""
    out: set[str] = set()
    for a in node.attribute:
        for sub in [a.g] if a.HasField("g") else list(a.graphs):
            for n in sub.node:
                out.add(op_key(n))
                out |= _subgraph_kinds(n)
    return out


class _Counter:
    """Costs node by node; collects what is unsupported and what is not counted (and why)."""

    def __init__(self, g: Graph, convention: str):
        self.g, self.convention = g, convention
        self.unsupported: Counter = Counter()
        self.uncounted: list[Uncounted] = []

    def _miss(self, node, name: str, reason: str, listed: str) -> OpCost:
        key = op_key(node)
        self.unsupported[listed] += 1
        if key in COUNTED_KINDS or self.convention == "all" or node.domain not in STANDARD:
            self.uncounted.append(Uncounted(name, key, reason))
        return OpCost(0)

    def cost(self, node, name: str, static: bool) -> OpCost:
        key = op_key(node)
        if static:
            return OpCost(0)  # computed from constants and folded shapes: nothing at run time
        if node.op_type in SUBGRAPH_OPS:
            kinds = _subgraph_kinds(node)
            if all(ALL_HANDLERS.get(k) is zero or k in SUBGRAPH_OPS for k in kinds) and node.op_type == "If":
                return OpCost(0)  # every branch only moves data (e.g. torch's LRN export): 0 either way
            self.unsupported[f"{key} (subgraph not counted)"] += 1
            hidden = kinds & COUNTED_KINDS or any(k not in ALL_HANDLERS and k not in SUBGRAPH_OPS for k in kinds)
            if hidden or self.convention == "all":
                self.uncounted.append(Uncounted(name, key, "subgraph not counted (it may hold Mult-Adds)"))
            return OpCost(0)
        handler = ALL_HANDLERS.get(key)
        if handler is None:
            reason = "custom op: it may hold Mult-Adds" if node.domain not in STANDARD else "op not supported"
            return self._miss(node, name, reason, key)
        try:
            return handler(node, self.g)
        except ShapeMismatch as exc:
            raise InvalidInputError(str(exc), path=self.g.path) from exc
        except (ShapeUnknown, EinsumError, IndexError) as exc:
            if key not in COUNTED_KINDS and self.convention == "paper":
                return OpCost(0)  # the paper convention gives this op 0 whatever its shape
            why = "shape unknown" if isinstance(exc, ShapeUnknown | IndexError) else f"bad equation ({exc})"
            return self._miss(node, name, why, f"{key} ({why.split(' (')[0]})")


def profile_graph(g: Graph, model: str, *, convention: str = "paper", strict: bool = False) -> ModelProfile:
    """Count every node of `g`; unsupported ops are listed (and an error when `strict`, as is a
    total that is only a lower bound)."""
    if convention not in CONVENTIONS:
        raise UsageError(f"--convention {convention!r}: choose one of {', '.join(CONVENTIONS)}")
    seen: set[str] = set()
    nbytes: Counter = Counter()
    counter = _Counter(g, convention)
    layers, statics = [], [g.is_static(n) for n in g.nodes]
    found = [list(_node_params(node, g, seen, nbytes, static)) for node, static in zip(g.nodes, statics)]
    for i in (i for i, static in enumerate(statics) if static):  # constants read only at load time
        _leftover_params(g.nodes[i], g, seen, nbytes, found[i])
    for i, node in enumerate(g.nodes):
        name = node.name or f"{node.op_type}_{i}"
        cost = counter.cost(node, name, statics[i])
        params, layer_bytes = found[i]
        out = g.shapes.get(node.output[0]) if node.output else None
        layers.append(LayerCost(
            name=name, op_type=node.op_type, type=layer_type(node, g),
            output_shape=out if out is not None else cost.output_shape,
            mult_adds=cost.mult_adds + (cost.extra if convention == "all" else 0),
            inputs=tuple(node.input), outputs=tuple(node.output), param_bytes=layer_bytes,
            activation_bytes=activation_bytes(g, node), **params,
        ))
    if strict and (counter.unsupported or counter.uncounted):
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(counter.unsupported.items()))
        bound = f"the total is a lower bound ({len(counter.uncounted)} nodes not counted); " if counter.uncounted else ""
        raise InvalidInputError(f"{bound}unsupported ops (--strict): {listed}", path=g.path)
    totals = Totals(
        mult_adds=sum(lc.mult_adds for lc in layers), nodes=len(layers),
        **{r: sum(getattr(lc, r) for lc in layers) for r in ROLES}, weight_bytes=dict(sorted(nbytes.items())),
    )
    by_type = _by_type(layers, totals)
    return ModelProfile(
        model=model, input_shapes=dict(g.inputs), convention=convention, layers=tuple(layers),
        by_type=by_type, totals=totals, unsupported=dict(sorted(counter.unsupported.items())), onnx_path=g.path,
        notes=(*g.notes, *paper_notes(totals.mult_adds, totals.weights, by_type)),
        complete=not counter.uncounted, uncounted=tuple(counter.uncounted), memory=memory_profile(g),
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
