"""What the structured fuzzer checks inside its worker, beyond the exit-code contract.

Coverage hooks (installed by monkeypatching in the worker only, never in the product code): whether
an input reached the counting code (effconv.profile.core.profile_graph was entered), which handlers
counted a node (op keys, via core._Counter.cost) and which op types effconv.profile.fold folded
(Folder.fold_node returned values). The folder's own promise is checked too: onnx.reference is never
asked to make an output over MAX_ELEMENTS, never runs out of memory, never takes over a second.

The shape oracle: for a graph ONNX Runtime can run (CPU EP, no optimizations, zeros at the input
shapes the profile used), every Conv/ConvTranspose/Gemm/MatMul/Einsum (and QLinearConv,
QLinearMatMul, ConvInteger, MatMulInteger) output shape in the profile equals the shape ORT
produces, each such output exposed as a graph output.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

CHECKED = frozenset("Conv ConvTranspose Gemm MatMul Einsum QLinearConv QLinearMatMul ConvInteger MatMulInteger "
                    "FusedConv FusedGemm FusedMatMul QGemm".split())
MAX_ORT_ELEMENTS = 1_000_000  # skip graphs whose profiled tensors are larger (ORT would be slow or refuse)
SLOW_FOLD_S = 1.0


class Hits:
    """Per-input record, reset before each input."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.reached = False
        self.handlers: set[str] = set()
        self.folds: set[str] = set()
        self.fold_findings: list[str] = []


HITS = Hits()
_INSTALLED = False


def install() -> None:
    """Wrap profile_graph, _Counter.cost, Folder.fold_node and Evaluator.run (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    from effconv.profile import core, fold

    orig_profile, orig_cost = core.profile_graph, core._Counter.cost
    orig_fold, orig_run = fold.Folder.fold_node, fold.Evaluator.run

    def profile_graph(*args, **kwargs):
        HITS.reached = True
        return orig_profile(*args, **kwargs)

    def cost(self, node, name, static):
        key = core.op_key(node)
        if not static and key in core.ALL_HANDLERS:
            HITS.handlers.add(key)
        return orig_cost(self, node, name, static)

    def fold_node(self, node, shapes):
        out = orig_fold(self, node, shapes)
        if out is not None:
            HITS.folds.add(node.op_type)
        return out

    def run(self, node, xs):
        t0 = time.perf_counter()
        try:
            outs = orig_run(self, node, xs)
        except MemoryError:
            HITS.fold_findings.append(f"fold of {node.op_type} ran out of memory (it allocated before refusing)")
            raise
        dt = time.perf_counter() - t0
        big = max((o.size for o in outs), default=0)
        if big > fold.MAX_ELEMENTS:
            HITS.fold_findings.append(f"fold of {node.op_type} evaluated {big:,} elements (cap {fold.MAX_ELEMENTS:,})")
        if dt > SLOW_FOLD_S:
            HITS.fold_findings.append(f"fold of {node.op_type} took {dt:.1f} s")
        return outs

    core.profile_graph = profile_graph
    core._Counter.cost = cost
    fold.Folder.fold_node = fold_node
    fold.Evaluator.run = run


def _first(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:160] if lines else ''}"


def ort_check(data: bytes, out_json: Path) -> dict:
    """Compare the profile's product output shapes with ONNX Runtime's. Returns {"status": ...,
    "agree": n, "unknown": n, "mismatch": [(op, node, effconv, ort)]}."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper

    doc = json.loads(out_json.read_text())
    layers = {lc["outputs"][0]: lc for lc in doc["layers"] if lc["outputs"] and lc["outputs"][0]}
    targets = [lc for lc in layers.values() if lc["op_type"] in CHECKED]
    if not targets:
        return {"status": "no product node"}
    for lc in doc["layers"]:
        s = lc["output_shape"]
        if s and all(isinstance(d, int) for d in s) and math.prod(s) > MAX_ORT_ELEMENTS:
            return {"status": "too large for ORT"}
    m = onnx.ModelProto()
    m.ParseFromString(data)
    main = {n.output[0] for n in m.graph.node if n.output}
    listed = {o.name for o in m.graph.output}
    want = [lc for lc in targets if lc["outputs"][0] in main]  # not a subgraph's node
    if not want:
        return {"status": "no product node in the main graph"}
    for lc in want:
        if lc["outputs"][0] not in listed:  # untyped: ONNX Runtime types it itself
            m.graph.output.append(helper.make_empty_tensor_value_info(lc["outputs"][0]))
    shapes = doc["input_shapes"]
    for vi in m.graph.input:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[vi.name]:
                dims.add().dim_value = d
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (ORT cannot load it: nothing to compare)
        return {"status": "ORT refused to load"}
    feeds = {}
    for i in sess.get_inputs():
        dims = shapes.get(i.name) or [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        dt = _NP.get(i.type)
        if dt is None:
            return {"status": f"input type {i.type}"}
        feeds[i.name] = np.zeros(dims, dt)
    names = [lc["outputs"][0] for lc in want]
    try:
        outs = sess.run(names, feeds)
    except Exception:  # noqa: BLE001 (e.g. a Reshape the zeros make impossible)
        return {"status": "ORT failed to run"}
    agree, unknown, mismatch, unknowns = 0, 0, [], []
    for lc, arr in zip(want, outs):
        ours = lc["output_shape"]
        if ours is None or not all(isinstance(d, int) for d in ours):
            unknown += 1
            unknowns.append((lc["op_type"], lc["name"], ours, list(arr.shape)))
        elif tuple(ours) == tuple(arr.shape):
            agree += 1
        else:
            mismatch.append((lc["op_type"], lc["name"], list(ours), list(arr.shape)))
    return {"status": "compared", "agree": agree, "unknown": unknown, "mismatch": mismatch, "unknowns": unknowns}


_NP = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(uint16)": "uint16",
    "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool", "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
}
