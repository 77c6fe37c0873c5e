"""Fold small constant subgraphs of the shape-inference skeleton with numpy.

Why: exporters compute pads and shapes with chains such as ConstantOfShape -> Concat -> Reshape ->
Slice -> Transpose -> Cast -> Pad (a ResNet option-A shortcut). ONNX data propagation stops at some
of these ops, and one unknown batch dim then hides the shapes of every layer below. Folding the
chain into initializers first lets the single shape-inference pass see static shapes. Only the
skeleton changes: the profile still lists every original node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

MAX_ELEMENTS = 4096  # folded tensors stay small: shapes, pads, scales; never weights


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant(node, xs, a):
    if "value" in a:
        t = a["value"]
        return numpy_helper.to_array(t) if np.prod(t.dims, dtype=np.int64) <= MAX_ELEMENTS else None
    for key, dtype in (("value_int", np.int64), ("value_ints", np.int64), ("value_float", np.float32),
                       ("value_floats", np.float32)):
        if key in a:
            return np.array(a[key], dtype=dtype)
    return None


def _constant_of_shape(node, xs, a):
    shape = [int(d) for d in xs[0]]
    if np.prod(shape, dtype=np.int64) > MAX_ELEMENTS:
        return None
    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)


def _reshape(node, xs, a):
    shape = [int(d) for d in xs[1]]
    if not a.get("allowzero", 0):
        shape = [xs[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return xs[0].reshape(shape)


def _slice(node, xs, a):
    data, starts, ends = xs[0], xs[1], xs[2]
    axes = xs[3] if len(xs) > 3 and xs[3] is not None else range(len(starts))
    steps = xs[4] if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


def _axes(xs, a):
    return [int(v) for v in (xs[1] if len(xs) > 1 and xs[1] is not None else a.get("axes", []))]


def _unsqueeze(node, xs, a):
    out = xs[0]
    for ax in sorted(ax % (out.ndim + len(_axes(xs, a))) for ax in _axes(xs, a)):
        out = np.expand_dims(out, ax)
    return out


def _squeeze(node, xs, a):
    axes = _axes(xs, a)
    return np.squeeze(xs[0], axis=tuple(axes) if axes else None)


FOLDERS: dict[str, Callable] = {
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Concat": lambda n, xs, a: np.concatenate(xs, axis=a.get("axis", 0)),
    "Reshape": _reshape,
    "Slice": _slice,
    "Transpose": lambda n, xs, a: np.transpose(xs[0], a.get("perm")),
    "Cast": lambda n, xs, a: xs[0].astype(helper.tensor_dtype_to_np_dtype(a["to"])),
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Gather": lambda n, xs, a: np.take(xs[0], xs[1], axis=a.get("axis", 0)),
    "Add": lambda n, xs, a: xs[0] + xs[1],
    "Sub": lambda n, xs, a: xs[0] - xs[1],
    "Mul": lambda n, xs, a: xs[0] * xs[1],
    "Range": lambda n, xs, a: np.arange(xs[0], xs[1], xs[2], dtype=xs[0].dtype),
}


def _fold_node(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> np.ndarray | None:
    fn = FOLDERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if fn is None or len(node.output) != 1 or not all(i == "" or i in values for i in node.input):
        return None
    try:
        res = fn(node, [values[i] if i else None for i in node.input], _attrs(node))
    except Exception:  # an op variant this folder does not model: leave it to shape inference
        return None
    if res is None:  # the folder declined (e.g. a ConstantOfShape too large to materialize)
        return None
    out = np.asarray(res)
    return out if out.size <= MAX_ELEMENTS else None


def fold_constants(graph: onnx.GraphProto) -> int:
    """Replace foldable nodes of `graph` (in place) by initializers; return how many were folded."""
    values = {}
    for t in graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            continue
        try:
            values[t.name] = numpy_helper.to_array(t)
        except (ValueError, TypeError, KeyError):  # malformed data, an unknown data_type (KeyError):
            # not folded; the checker and inference judge the nodes that read it
            continue
    keep, folded = [], {}
    for node in graph.node:
        out = _fold_node(node, values)
        if out is None:
            keep.append(node)
        else:
            values[node.output[0]] = folded[node.output[0]] = out
    if folded:
        graph.ClearField("node")
        graph.node.extend(keep)
        graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in folded.items())
    return len(folded)
