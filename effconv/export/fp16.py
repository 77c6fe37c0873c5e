"""FP32 -> FP16 on the ONNX graph: weights, constants and compute in float16.

A small pass of our own instead of a converter dependency. What it changes:
- every float32 initializer and Constant becomes float16 (values clipped to +-65504, the largest
  finite float16, so a large weight saturates instead of turning into inf);
- Cast nodes that produce float32 produce float16 instead, so the graph stays one precision;
- graph inputs and outputs: with `keep_io_fp32` (the default) they stay float32 and a Cast at each
  boundary converts; otherwise their element type becomes float16 too;
- a few operator inputs that ONNX allows only as float32 stay float32 (Resize's `scales`);
- If/Loop bodies are converted the same way (torch exports LocalResponseNorm with an If).
Intermediate value_info is dropped and re-inferred, so no stale float32 annotation survives.

ONNX Runtime's CPU provider lacks float16 kernels for some operators; it then inserts its own
casts and computes those nodes in float32. GPU providers and TensorRT run them in float16.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP16_MAX = 65504.0  # largest finite float16
# (op_type, input index) pairs whose tensor must remain float32 by the ONNX operator schema.
KEEP_FP32_INPUTS = {("Resize", 2), ("Upsample", 1)}


def convert_to_fp16(model: onnx.ModelProto, *, keep_io_fp32: bool = True) -> onnx.ModelProto:
    """Return a float16 copy of `model` (float32 input/output kept unless keep_io_fp32=False)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep = _fp32_only_names(out.graph)
    _convert_graph(out.graph, keep)
    _convert_io(out.graph, keep_io_fp32)
    return onnx.shape_inference.infer_shapes(out)


def _convert_graph(graph: onnx.GraphProto, keep: set[str], *, subgraph: bool = False) -> None:
    """Convert initializers and nodes, recursing into If/Loop bodies (whose own inputs and outputs
    are retyped, since they are internal to the model)."""
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            init.CopyFrom(_to_fp16_tensor(init))
    for node in graph.node:
        _convert_node(node, keep)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                _convert_graph(sub, keep, subgraph=True)
    if subgraph:
        for value in list(graph.input) + list(graph.output):
            if value.type.tensor_type.elem_type == TensorProto.FLOAT:
                value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]


def _fp32_only_names(graph: onnx.GraphProto) -> set[str]:
    names = set()
    for node in _all_nodes(graph):
        for idx, name in enumerate(node.input):
            if (node.op_type, idx) in KEEP_FP32_INPUTS and name:
                names.add(name)
    return names


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                yield from _all_nodes(sub)


def _to_fp16_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor)
    half = np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(half, tensor.name)


def _convert_node(node: onnx.NodeProto, keep: set[str]) -> None:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
            if not (node.op_type == "Constant" and node.output[0] in keep):
                attr.t.CopyFrom(_to_fp16_tensor(attr.t))
        elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
            attr.i = TensorProto.FLOAT16


def _convert_io(graph: onnx.GraphProto, keep_io_fp32: bool) -> None:
    """Retype inputs/outputs; with keep_io_fp32, rename the graph side and bridge with Casts."""
    if not keep_io_fp32:
        for value in list(graph.input) + list(graph.output):
            if value.type.tensor_type.elem_type == TensorProto.FLOAT:
                value.type.tensor_type.elem_type = TensorProto.FLOAT16
        return
    initializers = {init.name for init in graph.initializer}
    casts_in, casts_out = [], []
    for value in graph.input:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT and value.name not in initializers:
            inner = f"{value.name}_fp16"
            _rename_uses(graph, value.name, inner)
            casts_in.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT16,
                                             name=f"cast_{value.name}_to_fp16"))
    for value in graph.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = f"{value.name}_fp16"
            _rename_producer(graph, value.name, inner)
            casts_out.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT,
                                              name=f"cast_{value.name}_to_fp32"))
    nodes = casts_in + list(graph.node) + casts_out
    del graph.node[:]
    graph.node.extend(nodes)


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for idx, name in enumerate(node.input):
            if name == old:
                node.input[idx] = new


def _rename_producer(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename the tensor `old` where it is produced and wherever it is consumed inside the graph."""
    for node in graph.node:
        for idx, name in enumerate(node.output):
            if name == old:
                node.output[idx] = new
    _rename_uses(graph, old, new)
