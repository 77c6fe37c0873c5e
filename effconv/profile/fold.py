"""Fold the small constant tensors of a graph: Shape and Size of static shapes, and any standard op
whose inputs are all small constants.

Why: exporters compute shapes from shapes: a channel split `x.chunk(2, 1)` is a Slice whose end is
Shape -> Gather -> Div; a pad to a multiple of a window is Shape -> Gather -> Mod -> Sub -> Pad; a
ResNet option-A shortcut builds its pads with ConstantOfShape -> Concat -> Reshape -> Slice -> Cast.
ONNX data propagation stops at most of these ops, and one unknown dim then hides the shapes of
every layer below. So effconv.profile.propagate walks the graph once, folding and inferring node by
node: a Shape or Size of a tensor whose inferred shape is static is a constant; any standard op
whose inputs are all constants is evaluated by onnx.reference (which implements every standard op:
no table of our own); the next node's inference reads those values.

Untrusted files decide what is evaluated, so nothing is computed that could be large: every input
and every output is capped at MAX_ELEMENTS elements, and the output's size is known *before* the op
runs (from inference, from the op's own size rule, or from the values that size it: ConstantOfShape,
Expand, Tile, Range, Pad). Ops with subgraphs (If, Loop, Scan) and random ops are never evaluated.
The graph never changes: the profile still lists every original node.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

MAX_ELEMENTS = 4096  # folded tensors stay small: shapes, pads, scales; never weights
FLOAT_SHAPE_LIKE = 64  # elements: larger float constants are weights (never folded), smaller may be scales
STANDARD = ("", "ai.onnx")
NEVER = frozenset({"If", "Loop", "Scan", "SequenceMap", "RandomNormal", "RandomUniform", "RandomNormalLike",
                   "RandomUniformLike", "Bernoulli", "Multinomial", "Dropout"})
# Output elements never exceed the largest input's: unary, reductions, data movement that selects.
NO_LARGER = frozenset(
    "Abs Neg Not Floor Ceil Round Sqrt Reciprocal Sign Exp Log Relu Sigmoid Tanh Erf Cast CastLike Identity "
    "Reshape Flatten Squeeze Unsqueeze Transpose Slice Split ReduceMax ReduceMin ReduceSum ReduceProd "
    "ReduceMean ArgMax ArgMin TopK Compress Softmax Clip IsNaN IsInf".split()
)
BROADCAST = frozenset("Add Sub Mul Div Mod Pow Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor "
                      "BitShift Max Min Sum Mean Where".split())

Shapes = Mapping[str, tuple]
SOURCES = frozenset({"Shape", "Size", "Constant"})  # constants whatever their inputs' values


def _prod(dims) -> int:
    return math.prod(int(d) for d in dims)


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def _expand_bound(xs) -> int | None:
    return _prod(np.broadcast_shapes(xs[0].shape, tuple(int(d) for d in xs[1].reshape(-1))))


def _tile_bound(xs) -> int | None:
    return _prod(np.asarray(xs[0].shape, np.int64) * xs[1].reshape(-1).astype(np.int64))


def _range_bound(xs) -> int | None:
    start, limit, delta = (float(x.reshape(-1)[0]) for x in xs[:3])
    return max(0, math.ceil((limit - start) / delta)) if delta else None


def _pad_bound(xs) -> int | None:
    pads = xs[1].reshape(-1).astype(np.int64)
    r = xs[0].ndim
    if len(xs) > 3 and xs[3] is not None:  # opset 18 axes: pads only along those axes
        return None
    return _prod(max(0, s + int(pads[i]) + int(pads[i + r])) for i, s in enumerate(xs[0].shape))


# The ops that can make more elements than they read: their output size from the values that set it.
SIZED_BY_VALUES: dict[str, Callable] = {
    "ConstantOfShape": lambda xs: _prod(xs[0].reshape(-1)),
    "Expand": _expand_bound,
    "Tile": _tile_bound,
    "Range": _range_bound,
    "Pad": _pad_bound,
}


def output_bound(node: onnx.NodeProto, xs: list, out_shape) -> int | None:
    """Elements the node's first output will have, known before it runs; None when unknown."""
    if _static(out_shape):
        return _prod(out_shape)
    op = node.op_type
    present = [x for x in xs if x is not None]
    if op in NO_LARGER:
        return max((x.size for x in present), default=0)
    if op == "Concat":
        return sum(x.size for x in present)
    if op in BROADCAST:
        return _prod(np.broadcast_shapes(*(x.shape for x in present)))
    if op in SIZED_BY_VALUES:
        return SIZED_BY_VALUES[op](xs)
    if op == "Gather":
        return present[0].size * max(1, present[1].size)
    return None


def _noop_log(*_args, **_kwargs) -> None:
    return None


class Evaluator:
    """Runs one standard node on numpy inputs through onnx.reference (classes cached per op)."""

    def __init__(self, opsets: Mapping[str, int]):
        from onnx.reference.ops import load_op  # ~40 ms: imported only when something folds

        self._load = load_op
        self._classes: dict[str, type] = {}
        self._params = {"log": _noop_log, "opsets": dict(opsets), "new_ops": None, "verbose": 0,
                        "evaluator_cls": None}
        self._version = opsets.get("", opsets.get("ai.onnx", onnx.defs.onnx_opset_version()))

    def run(self, node: onnx.NodeProto, xs: list) -> list[np.ndarray] | None:
        cls = self._classes.get(node.op_type)
        if cls is None:
            cls = self._classes[node.op_type] = self._load("", node.op_type, self._version)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cls(node, self._params).run(*xs)
        outs = list(res) if isinstance(res, tuple | list) else [res]
        return [np.asarray(o) for o in outs]


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for a in node.attribute:
        if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
            return numpy_helper.to_array(a.t) if _prod(a.t.dims) <= MAX_ELEMENTS else None
        if a.name in ("value_int", "value_float"):
            return np.array(a.i if a.name == "value_int" else a.f, np.int64 if a.name == "value_int" else np.float32)
        if a.name in ("value_ints", "value_floats") and len(a.ints or a.floats) <= MAX_ELEMENTS:
            return np.array(list(a.ints) if a.name == "value_ints" else list(a.floats),
                            np.int64 if a.name == "value_ints" else np.float32)
    return None


def _shape_value(node: onnx.NodeProto, shapes: Shapes) -> np.ndarray | None:
    """Shape (with opset-15 start/end) or Size of a tensor whose shape is static."""
    shape = shapes.get(node.input[0]) if node.input else None
    if not _static(shape):
        return None
    if node.op_type == "Size":
        return np.array(_prod(shape), np.int64)
    a = {x.name: x.i for x in node.attribute}
    r = len(shape)
    start, end = a.get("start", 0), a.get("end", r)
    start, end = (max(0, min(r, v + r if v < 0 else v)) for v in (start, end))
    return np.array(shape[start:end], np.int64)


class Folder:
    """Constant values of one graph, grown node by node (see effconv.profile.propagate)."""

    def __init__(self, graph: onnx.GraphProto, opsets: Mapping[str, int]):
        self.values: dict[str, np.ndarray] = {}
        self.opsets = opsets
        self._eval: Evaluator | None = None
        for t in graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL or _prod(t.dims) > MAX_ELEMENTS:
                continue
            try:
                self.values[t.name] = numpy_helper.to_array(t)
            except (ValueError, TypeError, KeyError):  # malformed data or an unknown data_type:
                continue  # not folded; the checker and inference judge the nodes that read it

    def _evaluate(self, node: onnx.NodeProto, shapes: Shapes) -> list[np.ndarray] | None:
        op = node.op_type
        if op in ("Shape", "Size"):
            v = _shape_value(node, shapes)
            return None if v is None else [v]
        if op == "Constant":
            v = _constant_value(node)
            return None if v is None else [v]
        if op in NEVER or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                              for a in node.attribute):
            return None
        if not all(i == "" or i in self.values for i in node.input):
            return None
        xs = [self.values[i] if i else None for i in node.input]
        if any(x is not None and x.size > FLOAT_SHAPE_LIKE and x.dtype.kind in "fc" for x in xs):
            return None  # weights and biases, not shapes: inference needs only their dims
        bound = output_bound(node, xs, shapes.get(node.output[0]) if node.output else None)
        if bound is None or bound > MAX_ELEMENTS:
            return None
        if self._eval is None:
            self._eval = Evaluator(self.opsets)
        return self._eval.run(node, xs)

    def fold_node(self, node: onnx.NodeProto, shapes: Shapes) -> list[np.ndarray] | None:
        """The node's outputs when it is a constant (they are also kept in `values`), else None."""
        values = self.values
        if node.op_type not in SOURCES and not all(i in values or i == "" for i in node.input):
            return None  # the common case, checked first: a node reading an activation
        if node.domain not in STANDARD or not node.output or node.output[0] in values:
            return None
        try:
            outs = self._evaluate(node, shapes)
        except (Exception, MemoryError):  # an op variant onnx.reference refuses: inference decides
            return None
        names = [o for o in node.output if o]
        if outs is None or len(outs) < len(node.output):
            return None
        if any(o.size > MAX_ELEMENTS or o.dtype == object or o.dtype.kind not in "biufc" for o in outs):
            return None
        for name, value in zip(node.output, outs):
            if name in names:
                values[name] = value
        return outs
