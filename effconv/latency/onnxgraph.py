"""What the per-layer methods need from an ONNX graph: node names (the same fallback names as the
static profile: `node.name or f"{op_type}_{index}"`), tensor sizes from shape inference at the
timed batch, fused conv+norm+activation groups, and one-group sub-models for layer isolation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, shape_inference

from effconv.errors import InvalidInputError

HEAD_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
# Ops a runtime typically folds into the preceding convolution or matmul (epilogue fusion).
FUSABLE_OPS = frozenset({
    "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Elu", "Selu", "Add", "Mul",
})
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}  # bytes per element at each timed precision


@dataclass(frozen=True)
class Node:
    name: str
    op_type: str
    index: int
    inputs: tuple[str, ...]  # activation inputs (not initializers)
    params: tuple[str, ...]  # initializer inputs
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class OnnxGraph:
    model: onnx.ModelProto  # shape-inferred, input batch fixed
    nodes: tuple[Node, ...]
    elements: dict[str, int]  # tensor name -> element count, where known
    producer: dict[str, str]  # tensor -> node name
    consumers: dict[str, tuple[str, ...]]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def bytes_moved(self, names: tuple[str, ...] | list[str], precision: str) -> int:
        """Bytes read and written by a group of nodes at `precision`: activations entering the
        group + weights + activations leaving it (intermediate tensors stay in registers/cache)."""
        group = [self.node(n) for n in names]
        made = {t for n in group for t in n.outputs}
        ins = {t for n in group for t in n.inputs if t not in made}
        params = {t for n in group for t in n.params}
        outs = set(group[-1].outputs)
        return BYTES[precision] * sum(self.elements.get(t, 0) for t in ins | params | outs)


def load_onnx_graph(path: str | Path, batch: int, input_shapes=None) -> OnnxGraph:
    """The graph at the timed batch; `input_shapes` ((name, dims), ...: effconv.latency.shapes)
    set those inputs' dims first, symbolic ones included."""
    path = Path(path)
    shapes = dict(input_shapes or ())
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise InvalidInputError(f"cannot read ONNX model: {exc}", path=path) from exc
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in shapes and len(dims) == len(shapes[vi.name]):
            for d, value in zip(dims, shapes[vi.name]):
                d.dim_value = value  # replaces a dim_param too (a oneof)
        elif vi.name not in inits and dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch  # a symbolic batch becomes the timed batch
    model = shape_inference.infer_shapes(model)
    elements = _elements(model)
    consts = set(inits)  # initializers, Constant outputs, and Identity copies of either
    nodes, producer, consumers = [], {}, {}
    for i, n in enumerate(model.graph.node):
        name = n.name or f"{n.op_type}_{i}"
        if n.op_type == "Constant" or (n.op_type == "Identity" and n.input[0] in consts):
            consts.update(n.output)
        nodes.append(Node(name, n.op_type, i, tuple(t for t in n.input if t and t not in consts),
                          tuple(t for t in n.input if t in consts), tuple(n.output)))
        for t in n.output:
            producer[t] = name
        for t in n.input:
            consumers.setdefault(t, []).append(name)
    return OnnxGraph(model, tuple(nodes), elements, producer, {k: tuple(v) for k, v in consumers.items()})


def is_const_node(n: Node) -> bool:
    """A node that only forwards a constant (Constant, or Identity of an initializer)."""
    return n.op_type in ("Constant", "Identity") and not n.inputs


def _elements(model: onnx.ModelProto) -> dict[str, int]:
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            sizes[vi.name] = int(np.prod([d.dim_value for d in dims]))
    return sizes


def fused_group_ending_at(g: OnnxGraph, name: str) -> list[str]:
    """The chain head -> ... -> `name` that a runtime fuses into one kernel: walk back from a
    fusable node through single-consumer inputs until a Conv/Gemm head; [name] if there is none."""
    chain = [name]
    node = g.node(name)
    while node.op_type in FUSABLE_OPS:
        prev = [g.producer[t] for t in node.inputs if t in g.producer and len(g.consumers.get(t, ())) == 1]
        heads = [p for p in prev if g.node(p).op_type in HEAD_OPS]
        nxt = heads[0] if heads else (prev[0] if len(prev) == 1 else None)
        if nxt is None:
            return [name]
        chain.insert(0, nxt)
        node = g.node(nxt)
    return chain if node.op_type in HEAD_OPS else [name]


def fused_groups(g: OnnxGraph) -> list[list[str]]:
    """Partition the graph into isolation units: each head with its single-consumer epilogue of
    fusable ops; every other node alone. Constant nodes are folded into their consumers."""
    groups, taken = [], set()
    for n in g.nodes:
        if n.name in taken or is_const_node(n):
            continue
        group = [n.name]
        if n.op_type in HEAD_OPS:
            cur = n
            while len(cur.outputs) == 1 and len(g.consumers.get(cur.outputs[0], ())) == 1:
                nxt = g.node(g.consumers[cur.outputs[0]][0])
                if nxt.op_type not in FUSABLE_OPS:
                    break
                group.append(nxt.name)
                cur = nxt
        taken.update(group)
        groups.append(group)
    return groups


def submodel(g: OnnxGraph, names: list[str]) -> onnx.ModelProto:
    """A standalone model computing the group `names` from its real input shapes."""
    group = [g.model.graph.node[g.node(n).index] for n in names]
    made = {t for n in group for t in n.output}
    consts, todo = [], [t for n in group for t in n.input]
    while todo:  # constant-forwarding producers (Constant, Identity of an initializer) come along
        t = todo.pop()
        if t in g.producer and is_const_node(g.node(g.producer[t])):
            proto = g.model.graph.node[g.node(g.producer[t]).index]
            if proto not in consts:
                consts.insert(0, proto)
                todo.extend(proto.input)
    made |= {t for c in consts for t in c.output}
    group_inputs = [*(t for c in consts for t in c.input), *(t for n in group for t in n.input)]
    needed = {t for t in group_inputs if t}
    inits = [t for t in g.model.graph.initializer if t.name in needed]
    init_names = {t.name for t in inits}
    infos = {vi.name: vi for vi in (*g.model.graph.input, *g.model.graph.value_info, *g.model.graph.output)}
    ins = [infos[t] for t in dict.fromkeys(t for t in group_inputs if t) if t not in made and t not in init_names]
    outs = [infos.get(t) or helper.make_empty_tensor_value_info(t) for t in group[-1].output]
    graph = helper.make_graph([*consts, *group], "isolated", ins, outs, inits)
    return helper.make_model(graph, opset_imports=list(g.model.opset_import), ir_version=g.model.ir_version)


