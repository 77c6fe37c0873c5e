"""Load an ONNX file, validate it and infer every tensor shape, without reading its weight data.

Why a "skeleton": shape inference and the checker only need the *dims* of large initializers, not
their bytes. Large initializers are moved to typed graph inputs in a small copy of the model, so
the checker and shape inference serialize kilobytes, not the whole file; external weight data is
checked for safety and size but never loaded. The checker judges the user's file as given (before
any rewrite); then ONNX's whole-graph inference runs, and one walk in node order folds constants
and infers what is still unknown (effconv.profile.propagate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto

from effconv.errors import InvalidInputError, ResourceLimitError, UsageError
from effconv.profile.consts import Param, const_tensors, producers
from effconv.profile.fold import Folder
from effconv.profile.inputs import declared_dims, set_input_shapes
from effconv.profile.propagate import Propagator
from effconv.profile.model import Dim, Shape, parse_input_shape  # noqa: F401 (re-exported)
from effconv.profile.read import STRIP_MIN_FILE, read_checked  # noqa: F401 (re-exported)

SMALL_INIT = 1024  # elements: initializers up to this size stay in the skeleton (Reshape shapes...)
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})


@dataclass(frozen=True)
class Graph:
    """A validated, shape-inferred ONNX graph: what the handlers read."""

    path: Path
    nodes: tuple[onnx.NodeProto, ...]
    params: Mapping[str, Param]  # initializers and Constant outputs, by tensor name
    shapes: Mapping[str, Shape]  # every tensor whose shape is known, by name
    aliases: Mapping[str, str]  # Identity output -> the tensor it forwards (resolved to the root)
    inputs: Mapping[str, tuple[int, ...]]  # real graph inputs (initializers excluded), static dims
    consts: frozenset[str] = frozenset()  # tensors computed from constants only (weights, not activations)
    folded: frozenset[str] = frozenset()  # tensors whose values were folded (shape arithmetic of static shapes)
    types: Mapping[str, int] = field(default_factory=dict)  # ONNX element type, by tensor name
    made_by: Mapping[str, onnx.NodeProto] = field(default_factory=dict)  # tensor -> the node writing it
    notes: tuple[str, ...] = ()  # what the loader assumed (a symbolic batch profiled at 1 ...)
    outputs: tuple[str, ...] = ()  # graph output names

    def root(self, name: str) -> str:
        return self.aliases.get(name, name)

    def param(self, name: str) -> Param | None:
        """The constant tensor `name` (an initializer, or computed from constants only), or None."""
        root = self.root(name)
        p = self.params.get(root)
        if p is not None or root not in self.consts:
            return p
        shape = self.shapes.get(root)
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return Param(root, tuple(shape), self.types.get(root, TensorProto.UNDEFINED))

    def shape(self, name: str) -> Shape | None:
        p = self.params.get(self.root(name))
        return p.dims if p is not None else self.shapes.get(name)

    def is_static(self, node: onnx.NodeProto) -> bool:
        """Every output is a constant or a folded value: the node costs nothing at run time."""
        outs = [o for o in node.output if o]
        return bool(outs) and all(o in self.consts or o in self.folded for o in outs)


def load_graph(
    path: str | Path,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    batch: int | None = None,
) -> Graph:
    """Read, check and shape-infer `path`. Errors: InvalidInputError (exit 3), UsageError (exit 2)."""
    path = Path(path)
    model = read_checked(path)
    try:
        return _load_checked(model, path, input_shapes, batch)
    except UnicodeDecodeError as exc:  # a string field that parsed but is not UTF-8
        raise InvalidInputError("not an ONNX model (a name or string is not valid UTF-8)", path=path) from exc


def _load_checked(model, path: Path, input_shapes, batch) -> Graph:
    skeleton = _skeleton(model)
    init_names = {t.name for t in model.graph.initializer}
    real_names = [i.name for i in model.graph.input if i.name not in init_names]
    real_inputs, notes = set_input_shapes(skeleton, real_names, dict(input_shapes or {}), batch, path)
    with _errors(path):
        onnx.checker.check_model(skeleton)  # the user's file as given (weights as typed inputs)
    consts = const_tensors(model.graph)
    data_prop = _data_prop_is_safe(model, consts)
    if _ceil_pools_before_22(model):
        _drop_declared_shapes(skeleton)
    with _errors(path):
        inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=True, data_prop=data_prop)
    shapes, elems, types = _shapes(inferred.graph)
    folder = Folder(skeleton.graph, {o.domain or "": o.version for o in model.opset_import})
    Propagator(folder, shapes, elems, types, folder.opsets, model.ir_version).run(skeleton.graph.node)
    nodes = tuple(model.graph.node)
    return Graph(
        path=path, nodes=nodes, params=_params(model), shapes=shapes, aliases=_aliases(nodes),
        inputs=real_inputs, consts=consts, folded=frozenset(folder.values),
        types=elems, made_by=producers(nodes), notes=tuple(notes), outputs=tuple(o.name for o in model.graph.output),
    )


SIZED_OPS = frozenset({"Range", "ConstantOfShape", "Expand", "Tile"})
POOLS = frozenset({"MaxPool", "AveragePool", "LpPool"})


def _data_prop_is_safe(model: onnx.ModelProto, consts: frozenset[str]) -> bool:
    """ONNX's data propagation computes the values of constant Range / ConstantOfShape / Expand /
    Tile nodes in full (a 363-byte file asking Range for 10^8 elements took 25 s and ran out of
    memory in it). With such a node, inference runs without it; effconv's own walk then folds what
    is small (sized before it is computed: effconv.profile.fold)."""
    return not any(n.op_type in SIZED_OPS and n.input and all(i in consts for i in n.input if i)
                   for n in model.graph.node)


def _ceil_pools_before_22(model: onnx.ModelProto) -> bool:
    """Pools with ceil_mode=1 under opset < 22: ONNX's inference keeps a last window that starts in
    the end padding, which runtimes (and opset 22) drop. A file that declares the runtime's shapes
    is right, yet strict inference would call it inconsistent."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return opset < 22 and any(n.op_type in POOLS and any(a.name == "ceil_mode" and a.i for a in n.attribute)
                              for n in model.graph.node)


def _drop_declared_shapes(sk: onnx.ModelProto) -> None:
    """Inference derives every intermediate shape itself (the walk corrects the pools): forget the
    declared ones, which follow the runtime's pool rule."""
    sk.graph.ClearField("value_info")
    for vi in sk.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")


class _errors:
    """Checker and inference failures as the contract's errors (invalid input; out of memory)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, onnx.checker.ValidationError | onnx.shape_inference.InferenceError):
            raise InvalidInputError(f"not a valid ONNX model: {_first_line(exc)}", path=self.path) from exc
        if isinstance(exc, MemoryError):  # std::bad_alloc in the checker or inference
            raise ResourceLimitError(f"out of memory while checking and inferring shapes ({_first_line(exc)})",
                                     path=self.path) from exc
        return False


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _elements(t: onnx.TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose large initializers are typed graph inputs (dims only, no bytes)."""
    sk = onnx.ModelProto()
    sk.ir_version = model.ir_version
    sk.opset_import.extend(model.opset_import)
    sk.functions.extend(model.functions)
    g, src = sk.graph, model.graph
    g.name = src.name or "graph"
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    listed = {i.name for i in src.input}
    for t in src.initializer:
        if _elements(t) <= SMALL_INIT and t.data_location != TensorProto.EXTERNAL:
            g.initializer.append(t)
        elif t.name not in listed:  # typed input with the initializer's dims (built by hand: fast)
            vi = g.input.add()
            vi.name = t.name
            tt = vi.type.tensor_type
            tt.elem_type = t.data_type
            shape = tt.shape
            for d in t.dims:
                shape.dim.add().dim_value = d
    g.sparse_initializer.extend(src.sparse_initializer)
    return sk


def _shapes(graph: onnx.GraphProto) -> tuple[dict[str, Shape], dict[str, int], dict[str, onnx.TypeProto]]:
    """Shapes, element types and TypeProtos of every tensor whole-graph inference typed."""
    shapes: dict[str, Shape] = {}
    elems: dict[str, int] = {}
    types: dict[str, onnx.TypeProto] = {}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        dims = declared_dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
        if vi.type.HasField("tensor_type"):
            elems[vi.name] = vi.type.tensor_type.elem_type
            types[vi.name] = vi.type
    for t in graph.initializer:
        shapes.setdefault(t.name, tuple(t.dims))
        elems.setdefault(t.name, t.data_type)
    return shapes, elems, types


def _params(model: onnx.ModelProto) -> dict[str, Param]:
    params = {t.name: Param(t.name, tuple(t.dims), t.data_type) for t in model.graph.initializer}
    for st in model.graph.sparse_initializer:
        params[st.values.name] = Param(st.values.name, tuple(st.dims), st.values.data_type)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    params[node.output[0]] = Param(node.output[0], tuple(a.t.dims), a.t.data_type)
                elif a.name in ("value_float", "value_int"):
                    params[node.output[0]] = Param(node.output[0], (), TensorProto.FLOAT if a.name == "value_float"
                                                   else TensorProto.INT64)
                elif a.name in ("value_floats", "value_ints"):
                    n = len(a.floats) if a.name == "value_floats" else len(a.ints)
                    params[node.output[0]] = Param(node.output[0], (n,), TensorProto.FLOAT
                                                   if a.name == "value_floats" else TensorProto.INT64)
    return params


def _aliases(nodes) -> dict[str, str]:
    """Identity chains: each Identity output maps to the first tensor of its chain."""
    aliases: dict[str, str] = {}
    for node in nodes:  # ONNX nodes are topologically sorted, so one pass resolves chains
        if node.op_type == "Identity" and node.input and node.output:
            aliases[node.output[0]] = aliases.get(node.input[0], node.input[0])
    return aliases
