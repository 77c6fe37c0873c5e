"""One walk over the graph, in node order, that folds constants and infers shapes node by node.

ONNX's whole-graph inference (run first, in C++) stops at the first shape it cannot compute:
`x.chunk(2, 1)` is a Slice whose end is Shape -> Gather -> Div, and Div is not data-propagated, so
every node below is unknown. Alternating whole-graph inference with folding would need one round
per block of a deep network (a 48-block windowed-attention stack: ~100 rounds). Instead, after the
whole-graph pass, each node in order is first folded if it is a constant (effconv.profile.fold), and
otherwise, only where its outputs are still not static, inferred alone by ONNX's own per-node
inference (`onnx.shape_inference.infer_node_outputs`) with the constant values it reads, or by the
com.microsoft rules (effconv.profile.msshapes). Nodes that whole-graph inference already resolved
cost one dictionary look-up each.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from effconv.profile.fold import Folder
from effconv.profile.msshapes import MS, ms_output, runtime_output

SUBGRAPH = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d > 0 for d in shape)


class Propagator:
    """Shapes and element types of every tensor, completed in one walk (see the module docstring)."""

    def __init__(self, folder: Folder, shapes: dict, elems: dict, types: dict[str, onnx.TypeProto],
                 opsets: Mapping[str, int], ir_version: int):
        self.folder, self.shapes, self.elems, self.types = folder, shapes, elems, types
        self.opsets = dict(opsets)
        self.opset_protos = [helper.make_opsetid(d, v) for d, v in self.opsets.items()]
        self.ir_version = max(ir_version, 3)
        self._schemas: dict[tuple[str, str], onnx.defs.OpSchema | None] = {}
        self._data: dict[str, TensorProto] = {}

    def run(self, nodes) -> None:
        stale: set[str] = set()  # tensors whole-graph inference got wrong, and all computed from them
        initial = {name for name, shape in self.shapes.items() if _static(shape)}  # whole-graph inference's
        for node in nodes:
            outs = self.folder.fold_node(node, self.shapes)
            reads_stale = bool(stale) and any(i in stale for i in node.input)
            if outs is not None:
                for name, value in zip(node.output, outs):
                    if name:
                        self.shapes[name] = tuple(int(d) for d in value.shape)
                        self.elems[name] = helper.np_dtype_to_tensor_dtype(value.dtype)
                        self.types.pop(name, None)  # rebuilt from shapes/elems when a reader needs it
                        if reads_stale:
                            stale.add(name)
                continue
            fixed = runtime_output(node, self.shapes)
            if fixed is not None and node.output and fixed != self.shapes.get(node.output[0]):
                # where ONNX inference differs from the runtime (a ceil_mode pool, see msshapes)
                self.shapes[node.output[0]] = fixed
                self.types.pop(node.output[0], None)
                stale.add(node.output[0])
                continue
            if reads_stale:  # infer again from the corrected inputs: forget what inference said
                for o in node.output:
                    self.shapes.pop(o, None)
                    self.types.pop(o, None)
                stale.update(o for o in node.output if o)
            elif all(_static(self.shapes.get(o)) for o in node.output if o):
                if all(i in initial for i in node.input if i):
                    continue
                # static outputs although an input was only resolved in this walk: the file declared
                # them. A shape the node computes from its inputs wins over a declared one.
                before = {o: self.shapes.get(o) for o in node.output if o}
                self._infer_one(node, override=True)
                stale.update(o for o, shape in before.items() if self.shapes.get(o) != shape)
                continue
            self._infer_one(node)

    def _infer_one(self, node: onnx.NodeProto, override: bool = False) -> None:
        if node.domain == MS:
            found = ms_output(node, self.shapes, self.elems)
            if found is not None:
                self.shapes[node.output[0]], self.elems[node.output[0]] = found
                self.types.pop(node.output[0], None)
        elif not any(a.type in SUBGRAPH for a in node.attribute):
            self._infer(node, override)

    def _schema(self, node: onnx.NodeProto) -> onnx.defs.OpSchema | None:
        domain = "" if node.domain == "ai.onnx" else node.domain
        key = (domain, node.op_type)
        if key not in self._schemas:
            try:
                self._schemas[key] = onnx.defs.get_schema(node.op_type, self.opsets.get(domain, 1), domain)
            except onnx.defs.SchemaError:
                self._schemas[key] = None
        return self._schemas[key]

    def _type(self, name: str) -> onnx.TypeProto | None:
        t = self.types.get(name)
        if t is None and name in self.elems and self.shapes.get(name) is not None:
            dims = [d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else None)
                    for d in self.shapes[name]]
            t = self.types[name] = helper.make_tensor_type_proto(self.elems[name], dims)
        return t

    def _infer(self, node: onnx.NodeProto, override: bool = False) -> None:
        schema = self._schema(node)
        if schema is None:
            return
        types, data = {}, {}
        for name in node.input:
            if not name:
                continue
            t = self._type(name)
            if t is None:
                return  # an input with no type at all: nothing to infer from
            types[name] = t
            if name in self.folder.values:
                data[name] = self._tensor(name)
        try:
            outs = onnx.shape_inference.infer_node_outputs(schema, node, types, data, None, self.opset_protos,
                                                           self.ir_version)
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, ValueError,
                TypeError):  # ValidationError: an input type the op does not take (a bf16 Range's start)
            return  # inconsistent inputs: the node stays unknown and the profile says so
        for name, t in outs.items():
            dims = _dims(t)
            if dims is not None and (_more_static(dims, self.shapes.get(name)) or override and _static(dims)):
                self.shapes[name], self.elems[name], self.types[name] = dims, t.tensor_type.elem_type, t

    def _tensor(self, name: str) -> TensorProto:
        t = self._data.get(name)
        if t is None:
            t = self._data[name] = numpy_helper.from_array(np.asarray(self.folder.values[name]), name)
        return t


def _dims(t: onnx.TypeProto):
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value or d.dim_param or None for d in t.tensor_type.shape.dim)


def _more_static(new, old) -> bool:
    known = sum(1 for d in new if isinstance(d, int))
    return old is None or known > sum(1 for d in old if isinstance(d, int))
