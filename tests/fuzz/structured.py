"""Structure-aware fuzz inputs for `effconv profile`: valid ONNX models built and edited through the
onnx API, so most of them pass the checker and reach the counting code (inference, folding, the
handlers), unlike the byte-level mutations of fuzz_mutate.py, which mostly die at the parser.

`generate(r, seeds)` picks a builder (a small model of one theme, every size and attribute drawn
from `r`) or a corpus seed, then applies 0-2 edits. Themes: convolutions with random kernel sizes,
strides, pads, dilations, groups and auto_pad (kept consistent with their weights, or broken on
purpose); Gemm/MatMul with broadcasting and transposes; shape arithmetic
(Shape/Gather/Div/Mod/Concat/Reshape/Slice/Expand) with random constants, and deep Shape chains;
the opset-versioned forms of Pad, Slice, Resize, Split, Squeeze, Reduce*, Clip (inputs versus
attributes, opsets 9-21); tensors that folding would blow past its cap (Range, ConstantOfShape,
Expand, Tile, Pad, Resize asked for up to 10^12 elements and more); If/Loop subgraphs, nested;
QDQ chains and QOperator nodes; Einsum with random equations. Edits: perturb an attribute, swap an
op for a compatible one, convert float tensors to fp16/bf16/fp64, change the opset, drop the
inferred shapes, make the batch symbolic, change a weight's dims.

Every choice comes from `r`, so `random.Random(seed)` replays an input exactly. Returns the bytes,
the tags (builder and edits) and whether ONNX Runtime may run it for the shape oracle (False for
deliberate blow-ups, which it would try to allocate).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSETS = tuple(range(9, 22))
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
BIG = (10**6, 10**12, 2**31, 2**40, 2**62)


@dataclass
class Case:
    """A model under construction: nodes, inputs, initializers, and the tags that describe it."""

    opset: int
    tags: list[str]
    nodes: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    ort: bool = True
    ms: bool = False  # imports com.microsoft
    n: int = 0

    def name(self, stem: str = "t") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def const(self, value, dtype=None, stem: str = "c") -> str:
        kind = np.asarray(value).dtype.kind
        arr = np.asarray(value, dtype=dtype if dtype is not None else (np.int64 if kind in "iu" else
                                                                       bool if kind == "b" else np.float32))
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs, n_out: int = 1, domain: str = "", **attrs) -> list[str]:
        outs = [self.name(op[:4].lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=self.name(op), domain=domain, **attrs))
        return outs

    def one(self, op: str, *inputs, **attrs) -> str:
        return self.node(op, inputs, **attrs)[0]

    def input(self, shape, elem=FLOAT, stem: str = "x") -> str:
        name = self.name(stem)
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name: str, elem=FLOAT) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, elem, None))

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "fuzz", self.inputs, self.outputs, self.inits)
        opsets = [helper.make_opsetid("", self.opset)] + ([helper.make_opsetid("com.microsoft", 1)] if self.ms else [])
        m = helper.make_model(g, opset_imports=opsets)
        m.ir_version = helper.find_min_ir_version_for(opsets[:1])
        _type_outputs(m)
        return m


def _type_outputs(m: onnx.ModelProto) -> None:
    """Graph outputs need a shape for the checker: take the one ONNX infers (rank and what dims it
    can), else leave it out (a broken model stays broken)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(m)  # no data_prop: it may materialize huge shapes
    except Exception:  # noqa: BLE001 (an inconsistent model on purpose)
        return
    known = {vi.name: vi for vi in (*inferred.graph.value_info, *inferred.graph.output)
             if vi.type.tensor_type.HasField("shape")}
    for vi in m.graph.output:
        if vi.name in known:
            vi.type.CopyFrom(known[vi.name].type)
        elif not vi.type.tensor_type.HasField("shape"):  # rank unknown to ONNX: output the shape instead
            name = vi.name
            m.graph.node.append(helper.make_node("Shape", [name], [f"{name}_shape"], name=f"{name}_shape"))
            vi.CopyFrom(helper.make_tensor_value_info(f"{name}_shape", INT64, [None]))


def _w(r: random.Random, *shape, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(r.randrange(2**32)).standard_normal(shape).astype(dtype)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# Convolutions ------------------------------------------------------------------------------------
def conv(r: random.Random, c: Case, x: str, shape: list[int], transpose: bool = False) -> tuple[str, list[int]]:
    """A Conv (or ConvTranspose) on x [N, C, *spatial] with random attributes; mostly consistent
    with its weight. Returns the output and its expected shape (may be wrong when broken)."""
    ch, spatial = shape[1], shape[2:]
    rank = len(spatial)
    g = r.choice([1, 1, 1, ch, r.choice(_divisors(ch))])
    cout = g * r.randint(1, max(1, 8 // g))
    k = [r.randint(1, min(5, s + 2)) for s in spatial]
    s = [r.choice((1, 1, 2, 3)) for _ in spatial]
    d = [r.choice((1, 1, 1, 2)) for _ in spatial]
    p = [r.randint(0, 2) for _ in range(2 * rank)]
    auto = r.choice(("NOTSET",) * 6 + ("SAME_UPPER", "SAME_LOWER", "VALID"))
    wshape = [ch, cout // g, *k] if transpose else [cout, ch // g, *k]
    attrs = {}
    if r.random() < 0.7:
        attrs["kernel_shape"] = k
    if s != [1] * rank or r.random() < 0.3:
        attrs["strides"] = s
    if d != [1] * rank or r.random() < 0.3:
        attrs["dilations"] = d
    if g != 1 or r.random() < 0.2:
        attrs["group"] = g
    if auto != "NOTSET":
        attrs["auto_pad"] = auto
    elif any(p) or r.random() < 0.3:
        attrs["pads"] = p
    if transpose and r.random() < 0.3:
        attrs["output_padding"] = [r.randrange(min(si, di) if min(si, di) > 1 else 1) for si, di in zip(s, d)]
    if r.random() < 0.08:  # broken on purpose: the checker, inference or the handler must refuse cleanly
        what = r.choice(("cin", "kernel", "group", "pads"))
        c.tags.append(f"conv_broken_{what}")
        if what == "cin":
            wshape[1] += 1
        elif what == "kernel":
            attrs["kernel_shape"] = [kk + 1 for kk in k]
        elif what == "group":
            attrs["group"] = g + 1
        else:
            attrs.pop("auto_pad", None)
            attrs["pads"] = p[:rank]
    w = c.const(_w(r, *wshape), stem="w")
    ins = [x, w] + ([c.const(_w(r, wshape[1] * g if transpose else cout), stem="b")] if r.random() < 0.6 else [])
    y = c.one("ConvTranspose" if transpose else "Conv", *ins, **attrs)
    if transpose:
        op = attrs.get("output_padding", [0] * rank)
        out = [si * (n - 1) + o + (kk - 1) * di + 1 - (0 if auto != "NOTSET" else p[i] + p[i + rank])
               for i, (n, si, o, kk, di) in enumerate(zip(spatial, s, op, k, d))]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = [n * si for n, si in zip(spatial, s)]
        return y, [shape[0], wshape[1] * g, *out]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // si) for n, si in zip(spatial, s)]
    else:
        pp = [0] * 2 * rank if auto == "VALID" else p
        out = [(n + pp[i] + pp[i + rank] - (kk - 1) * di - 1) // si + 1
               for i, (n, kk, si, di) in enumerate(zip(spatial, k, s, d))]
    return y, [shape[0], cout, *out]


def _between(r: random.Random, c: Case, y: str, shape: list[int]) -> tuple[str, list[int]]:
    """An activation, BatchNormalization or pooling between convolutions."""
    kind = r.choice(("Relu", "Sigmoid", "BN", "MaxPool", "AveragePool", "none", "none"))
    if kind in ("Relu", "Sigmoid"):
        return c.one(kind, y), shape
    if kind == "BN":
        ch = shape[1]
        ps = [c.const(np.abs(_w(r, ch)) + 0.5, stem="bn") for _ in range(4)]
        return c.one("BatchNormalization", y, *ps), shape
    if kind in ("MaxPool", "AveragePool") and all(s >= 2 for s in shape[2:]):
        rank = len(shape) - 2
        return c.one(kind, y, kernel_shape=[2] * rank, strides=[r.choice((1, 2))] * rank), shape[:2] + [-1] * rank
    return y, shape


def conv_chain(r: random.Random, c: Case) -> None:
    rank = r.choice((2, 2, 2, 1, 3))
    shape = [r.choice((1, 1, 2)), r.choice((1, 2, 3, 4, 6, 8))] + [r.randint(3, 10 if rank < 3 else 5) for _ in range(rank)]
    x = c.input(shape)
    y, cur = x, shape
    for _ in range(r.randint(1, 3)):
        y, cur = conv(r, c, y, cur, transpose=r.random() < 0.15)
        if any(d <= 0 for d in cur):
            break
        y, cur = _between(r, c, y, cur)
        if any(d <= 0 for d in cur[2:]) and -1 not in cur:
            break
        if -1 in cur:
            break
    if r.random() < 0.5 and cur[1] > 0:
        gp = c.one("GlobalAveragePool", y)
        flat = c.one("Flatten", gp)
        classes = r.randint(1, 10)
        w = c.const(_w(r, cur[1], classes), stem="fc")
        ins = [flat, w, c.const(_w(r, classes), stem="fcb")] if c.opset < 11 or r.random() < 0.5 else [flat, w]
        y = c.one("Gemm", *ins)
    c.output(y)


# Matrix products ---------------------------------------------------------------------------------
def matmul_gemm(r: random.Random, c: Case) -> None:
    if r.random() < 0.4:
        m, k, n = r.randint(1, 6), r.randint(1, 6), r.randint(1, 6)
        ta, tb = r.random() < 0.3, r.random() < 0.5
        a = c.input([k, m] if ta else [m, k])
        bshape = [n, k] if tb else [k, n]
        if r.random() < 0.1:
            bshape[0 if tb else 1] += 0
            bshape[1 if tb else 0] += 1
            c.tags.append("gemm_broken_k")
        b = c.const(_w(r, *bshape), stem="w") if r.random() < 0.7 else c.input(bshape, stem="b")
        attrs = {"transA": int(ta), "transB": int(tb)}
        if r.random() < 0.3:
            attrs.update(alpha=0.5, beta=2.0)
        ins = [a, b]
        if c.opset < 11 or r.random() < 0.6:
            ins.append(c.const(_w(r, *r.choice(([n], [1, n], [m, n], [1], []))), stem="bias"))
        c.output(c.one("Gemm", *ins, **attrs))
        return
    k = r.randint(1, 6)
    ra, rb = r.choice((1, 2, 2, 3, 4)), r.choice((1, 2, 2, 3, 4))
    batch = [r.randint(1, 3) for _ in range(max(ra, rb) - 2)]
    ash = ([r.choice((1, b)) for b in batch[len(batch) - (ra - 2):]] if ra > 2 else []) + ([r.randint(1, 5)] if ra > 1 else [])
    bsh = [r.choice((1, b)) for b in batch[len(batch) - (rb - 2):]] if rb > 2 else []
    ash = ash + [k]
    bsh = bsh + [k] + ([r.randint(1, 5)] if rb > 1 else [])
    if r.random() < 0.1:
        bsh[-2 if rb > 1 else -1] += 1
        c.tags.append("matmul_broken_k")
    a = c.input(ash)
    b = c.const(_w(r, *bsh), stem="w") if r.random() < 0.6 else c.input(bsh, stem="b")
    if r.random() < 0.5:
        a, b = (b, a) if r.random() < 0.1 else (a, b)
    y = c.one("MatMul", a, b)
    if r.random() < 0.3:
        y = c.one("Relu", y)
    c.output(y)


# Shape arithmetic --------------------------------------------------------------------------------
def shape_expr(r: random.Random, c: Case, t: str, rank: int, want: int | None = None) -> tuple[str, int]:
    """An int64 1-D tensor computed from Shape(t) (t of rank `rank`) with random ops and constants,
    and its length (`want` elements when given)."""
    n_s = rank
    if c.opset >= 15 and r.random() < 0.3:
        lo = r.randint(0, rank - 1)
        s = c.one("Shape", t, start=lo - rank if r.random() < 0.5 else lo)
        n_s = rank - lo
    else:
        s = c.one("Shape", t)
    parts, n = [], 0
    for _ in range(want if want is not None else r.randint(1, 4)):
        idx = r.randint(-n_s, n_s - 1) if r.random() < 0.97 else r.choice((n_s, -n_s - 1, 2**40))
        g = c.one("Gather", s, c.const([idx] if r.random() < 0.7 else idx))
        for _ in range(r.randint(0, 3)):
            op = r.choice(("Div", "Mod", "Mul", "Add", "Sub") if c.opset >= 10 else ("Div", "Mul", "Add", "Sub"))
            v = r.choice((1, 2, 3, 4, -1, 0)) if r.random() < 0.97 else r.choice(BIG)
            g = c.one(op, g, c.const([v] if r.random() < 0.5 else v))
        if r.random() < 0.3:
            g = c.one("Cast", g, to=r.choice((TensorProto.INT32, INT64, FLOAT)))
            g = c.one("Cast", g, to=INT64)
        parts.append(c.one("Reshape", g, c.const([1])))
        n += 1
    if want is None and r.random() < 0.4:
        k = r.randint(1, 2)
        parts.append(c.const([r.choice((1, -1, 0, 2, 3))] * k))
        n += k
    r.shuffle(parts)
    return (c.one("Concat", *parts, axis=0) if len(parts) > 1 else parts[0]), n


def shape_arith(r: random.Random, c: Case) -> None:
    shape = [1, r.choice((2, 4, 6, 8))] + [r.randint(4, 8) for _ in range(2)]
    x = c.input(shape)
    y, cur = conv(r, c, x, shape)
    if any(d <= 0 for d in cur):
        c.output(y)
        return
    rank = len(cur)
    for _ in range(r.randint(1, 3)):
        use = r.choice(("Reshape", "Reshape", "Slice", "Expand", "ConstantOfShape", "Tile", "Split", "Range"))
        e, n = shape_expr(r, c, y, rank, want=rank if use in ("Tile", "Split") and r.random() < 0.8 else None)
        c.tags.append(f"shape_{use}")
        if use == "Reshape":
            y, rank = c.one("Reshape", y, e), n
        elif use == "Slice" and c.opset >= 10:
            k = min(n, rank)
            ends = c.one("Slice", e, c.const([0]), c.const([k])) if n != k else e
            axes = c.const(r.sample(range(rank), k))
            y = c.one("Slice", y, c.const([0] * k), ends, *([axes] if r.random() < 0.7 else []))
        elif use == "Expand":
            y, rank = c.one("Expand", y, e), max(rank, n)
        elif use == "ConstantOfShape":
            z = c.one("ConstantOfShape", e, value=helper.make_tensor("v", FLOAT, [1], [0.5]))
            y, rank = c.one("Add", y, z), max(rank, n)
        elif use == "Tile":
            y = c.one("Tile", y, e)
        elif use == "Split" and c.opset >= 13:
            y = c.node("Split", [y, c.one("Abs", c.one("Slice", e, c.const([0]), c.const([1])))], n_out=1,
                       axis=r.randint(0, rank - 1))[0]
        elif use == "Range" and c.opset >= 11:
            lim = c.one("ReduceMax", e, keepdims=0)
            rg = c.one("Range", c.const(0), lim, c.const(1))
            size = c.one("Reshape", c.one("Size", rg), c.const([1]))
            y, rank = c.one("Reshape", y, c.one("Concat", c.const([-1]), size, axis=0)), 2
        # a product after the arithmetic: its shape is what the oracle checks
        if r.random() < 0.5:  # any rank: [d0, rest] x [rest, d0]
            flat = c.one("Flatten", y, axis=1)
            y, rank = c.one("MatMul", flat, c.one("Transpose", flat, perm=[1, 0])), 2
    c.output(y)


def deep_shape_chain(r: random.Random, c: Case) -> None:
    """Shape of Shape of ..., and Reshape chains that each read the shape of the last one."""
    shape = [1, 4, r.randint(2, 6), r.randint(2, 6)]
    x = c.input(shape)
    y = c.one("Conv", x, c.const(_w(r, 4, 4, 1, 1), stem="w"))
    depth = r.choice((10, 50, 200, 600))
    c.tags.append(f"depth_{depth}")
    if r.random() < 0.5:
        s = y
        for _ in range(depth):
            s = c.one("Shape", s)
        y = c.one("Reshape", y, c.one("Concat", c.const([-1]), s, axis=0))
        c.output(c.one("MatMul", y, c.one("Transpose", y, perm=[1, 0])))
        return
    else:
        for i in range(depth):
            s = c.one("Shape", y)
            perm = [0, 1, 3, 2] if i % 2 else [0, 1, 2, 3]
            y = c.one("Reshape", y, c.one("Gather", s, c.const(perm)))
    c.output(c.one("MatMul", y, c.one("Transpose", y, perm=[0, 1, 3, 2])))


# Opset-versioned forms ---------------------------------------------------------------------------
def opset_variants(r: random.Random, c: Case) -> None:
    """Pad, Slice, Resize/Upsample, Split, Squeeze/Unsqueeze, ReduceMean/ReduceSum, Clip in the form
    of the model's opset (inputs or attributes), sometimes the wrong form on purpose."""
    wrong = r.random() < 0.1
    v = c.opset if not wrong else r.choice(OPSETS)
    if wrong:
        c.tags.append(f"form_of_opset_{v}")
    shape = [1, r.choice((1, 2, 3)), r.randint(2, 6), r.randint(2, 6)]
    x = c.input(shape)
    op = r.choice(("Pad", "Slice", "Resize", "Split", "Squeeze", "Reduce", "Clip"))
    c.tags.append(f"form_{op}")
    y = x
    if op == "Pad":
        pads = [r.choice((0, 0, 1, 2, -1)) for _ in range(8)]
        pads[0] = pads[4] = 0
        mode = r.choice(("constant", "reflect", "edge") + (("wrap",) if v >= 19 else ()))
        if v < 11:
            y = c.one("Pad", x, pads=pads, mode=mode, value=0.0)
        else:
            ins = [x, c.const(pads)]
            if r.random() < 0.5:
                ins.append(c.const(np.float32(0.5)))
            if v >= 18 and r.random() < 0.4:
                axes = sorted(r.sample(range(4), 2))
                ins = [x, c.const([pads[a] for a in axes] + [pads[a + 4] for a in axes]),
                       ins[2] if len(ins) > 2 else "", c.const(axes)]
            y = c.one("Pad", *ins, mode=mode)
    elif op == "Slice":
        starts = [r.randint(-3, 2) for _ in range(2)]
        ends = [r.choice((r.randint(-2, 6), 2**62, -(2**62))) for _ in range(2)]
        axes = r.choice(([2, 3], [3, 2], [-1, -2], [2, 3]))
        if v < 10:
            y = c.one("Slice", x, starts=starts, ends=ends, axes=axes)
        else:
            steps = [r.choice((1, 1, 2, -1)) for _ in range(2)]
            y = c.one("Slice", x, c.const(starts), c.const(ends), c.const(axes), c.const(steps))
    elif op == "Resize":
        mode = r.choice(("nearest", "linear") + (("cubic",) if v >= 11 else ()))
        scales = [1.0, 1.0, r.choice((0.5, 1.0, 2.0, 1.5)), r.choice((0.5, 1.0, 2.0, 3.0))]
        if v < 10:
            y = c.one("Upsample", x, c.const(np.array(scales, np.float32)), mode=mode if mode != "cubic" else "linear")
        elif v == 10:
            y = c.one("Resize", x, c.const(np.array(scales, np.float32)), mode=mode)
        else:
            use_sizes = r.random() < 0.4
            roi = c.const(np.zeros(0, np.float32)) if v < 13 or r.random() < 0.3 else ""
            attrs = {"mode": mode}
            if r.random() < 0.5:
                attrs["coordinate_transformation_mode"] = r.choice(("half_pixel", "asymmetric", "align_corners",
                                                                    "pytorch_half_pixel"))
            if use_sizes:
                sizes = [shape[0], shape[1], r.randint(1, 12), r.randint(1, 12)]
                if v >= 18 and r.random() < 0.4:
                    attrs["axes"] = [2, 3]
                    sizes = sizes[2:]
                    if r.random() < 0.5:
                        attrs["keep_aspect_ratio_policy"] = r.choice(("not_larger", "not_smaller"))
                scales_in = c.const(np.zeros(0, np.float32)) if v < 13 else ""
                y = c.one("Resize", x, roi, scales_in, c.const(sizes), **attrs)
            else:
                if v >= 18 and r.random() < 0.4:
                    attrs["axes"] = [2, 3]
                    scales = scales[2:]
                y = c.one("Resize", x, roi, c.const(np.array(scales, np.float32)), **attrs)
    elif op == "Split":
        n = r.randint(1, 3)
        sizes = [1] * (n - 1) + [shape[2] - (n - 1)] if shape[2] > n else [shape[2]]
        if v < 13:
            outs = c.node("Split", [x], n_out=len(sizes), axis=2, split=sizes)
        elif v < 18 or r.random() < 0.5:
            outs = c.node("Split", [x, c.const(sizes)], n_out=len(sizes), axis=2)
        else:
            outs = c.node("Split", [x], n_out=n, axis=2, num_outputs=n)
        y = outs[-1]
    elif op == "Squeeze":
        u = c.one("Unsqueeze", x, axes=[0]) if v < 13 else c.one("Unsqueeze", x, c.const([0]))
        y = c.one("Squeeze", u, axes=[0]) if v < 13 else c.one("Squeeze", u, c.const([0]))
    elif op == "Reduce":
        red = r.choice(("ReduceMean", "ReduceSum", "ReduceMax"))
        as_input = v >= 18 or (red == "ReduceSum" and v >= 13)
        keep = r.choice((0, 1, 1))
        axes = r.choice(([2], [3], [-1], [2, 3]))
        y = c.one(red, x, c.const(axes), keepdims=keep) if as_input else c.one(red, x, axes=axes, keepdims=keep)
        if not keep:
            y = c.one("Unsqueeze", y, axes=axes) if v < 13 else c.one("Unsqueeze", y, c.const(axes))
    else:
        y = c.one("Clip", x, min=0.0, max=6.0) if v < 11 else c.one("Clip", x, c.const(np.float32(0)),
                                                                     c.const(np.float32(6)))
    ch = shape[1]
    y = c.one("Conv", y, c.const(_w(r, 2, ch, 1, 1), stem="w"))
    c.output(y)


# Folded tensors past the cap ---------------------------------------------------------------------
def blowup(r: random.Random, c: Case) -> None:
    """A tensor folding must refuse to evaluate (it would be far over its cap); ONNX Runtime is not
    asked to run these (it would allocate them)."""
    c.ort = False
    c.opset = max(c.opset, 11)
    x = c.input([1, 2, 4, 4])
    y = c.one("Conv", x, c.const(_w(r, 2, 2, 1, 1), stem="w"))
    big = r.choice(BIG)
    kind = r.choice(("ConstantOfShape", "Expand", "Tile", "Range", "RangeFloat", "Pad", "Resize", "Concat",
                     "Broadcast", "Computed", "Gather"))
    c.tags.append(f"blowup_{kind}")
    if kind == "ConstantOfShape":
        t = c.one("ConstantOfShape", c.const([big, big] if r.random() < 0.5 else [big]))
    elif kind == "Expand":
        t = c.one("Expand", c.const(np.ones(2, np.int64)), c.const([big, 2]))
    elif kind == "Tile":
        t = c.one("Tile", c.const(np.ones((2, 2), np.int64)), c.const([big, big]))
    elif kind == "Range":
        t = c.one("Range", c.const(0), c.const(big), c.const(1))
    elif kind == "RangeFloat":
        delta = r.choice((1e-12, 1e-30, float("nan"), float("inf"), -1e-9, 0.0))
        t = c.one("Range", c.const(np.float32(0)), c.const(np.float32(1)), c.const(np.float32(delta)))
    elif kind == "Pad":
        t = c.one("Pad", c.const(np.ones((2, 2), np.int64)), c.const([big, 0, big, 0]))
    elif kind == "Resize":
        roi = c.const(np.zeros(0, np.float32)) if c.opset < 13 else ""
        t = c.one("Resize", c.const(np.ones((1, 1, 2, 2), np.int64)), roi, c.const(np.array([1, 1, 1e6, 1e6], np.float32)))
    elif kind == "Concat":
        part = c.const(np.ones(4000, np.int64))
        t = c.one("Concat", *[part] * 64, axis=0)
    elif kind == "Broadcast":
        t = c.one("Add", c.const(np.ones((4000, 1), np.int64)), c.const(np.ones((1, 4000), np.int64)))
    elif kind == "Gather":
        t = c.one("Gather", c.const(np.ones((4000, 4), np.int64)), c.const(np.zeros((4000,), np.int64)))
    else:  # sizes computed from a folded shape
        s = c.one("Shape", y)
        t = c.one("ConstantOfShape", c.one("Mul", s, c.const([big])))
    s = c.one("Shape", t)
    n = c.one("ReduceMin", s, keepdims=1) if c.opset < 18 else c.one("ReduceMin", s, keepdims=1)
    y = c.one("Reshape", y, c.one("Concat", c.const([1, -1]), c.one("Min", n, c.const([16])), axis=0))
    c.output(y)
    if r.random() < 0.3:
        c.output(t, TensorProto.FLOAT if kind in ("ConstantOfShape", "Computed", "RangeFloat") else INT64)


# Subgraphs ---------------------------------------------------------------------------------------
def _branch(r: random.Random, x: str, ch: int, depth: int, stem: str) -> onnx.GraphProto:
    """A subgraph that reads the outer `x` [1, ch, h, w] and returns one float tensor."""
    b = Case(opset=13, tags=[])
    b.n = r.randrange(10**6) * 1000
    y = b.one("Conv", x, b.const(_w(r, ch, ch, 1, 1), stem=f"{stem}w"))
    if depth > 0 and r.random() < 0.6:
        sub_then, sub_else = _branch(r, y, ch, depth - 1, stem + "t"), _branch(r, y, ch, depth - 1, stem + "e")
        cond = b.const(np.array(r.random() < 0.5))
        y = b.one("If", cond, then_branch=sub_then, else_branch=sub_else)
    else:
        y = b.one(r.choice(("Relu", "Sigmoid", "Identity")), y)
    return helper.make_graph(b.nodes, stem, [], [helper.make_tensor_value_info(y, FLOAT, None)], b.inits)


def subgraphs(r: random.Random, c: Case) -> None:
    c.opset = max(c.opset, 11)
    ch = r.choice((1, 2, 4))
    x = c.input([1, ch, 4, 4])
    y = c.one("Conv", x, c.const(_w(r, ch, ch, 3, 3), stem="w"), pads=[1, 1, 1, 1])
    depth = r.randint(0, 3)
    c.tags.append(f"nest_{depth}")
    if r.random() < 0.5:
        cond = c.input([], TensorProto.BOOL, stem="cond") if r.random() < 0.5 else c.const(np.array(True))
        y = c.one("If", cond, then_branch=_branch(r, y, ch, depth, "then"), else_branch=_branch(r, y, ch, depth, "else"))
    else:
        body = Case(opset=c.opset, tags=[])
        body.n = 5000
        it, cin, v = "iter", "cond_in", "v_in"
        inner = body.one("MatMul", v, body.const(_w(r, 4, 4), stem="bw"))
        if depth > 0:
            inner = body.one("If", body.const(np.array(True)), then_branch=_branch(r, y, ch, depth - 1, "lt"),
                             else_branch=_branch(r, y, ch, depth - 1, "le")) if r.random() < 0.3 else inner
        trips = c.const(np.array(r.choice((0, 1, 3)), np.int64)) if r.random() < 0.7 else ""
        cout = body.one("Identity" if trips else "Not", cin)  # no trip count: stop after one iteration
        bg = helper.make_graph(body.nodes, "body",
                               [helper.make_tensor_value_info(it, INT64, []), helper.make_tensor_value_info(cin, TensorProto.BOOL, []),
                                helper.make_tensor_value_info(v, FLOAT, None)],
                               [helper.make_tensor_value_info(cout, TensorProto.BOOL, []),
                                helper.make_tensor_value_info(inner, FLOAT, None)], body.inits)
        y = c.node("Loop", [trips, c.const(np.array(True)), y], n_out=1, body=bg)[0]
    y = c.one("Conv", y, c.const(_w(r, 2, ch, 1, 1), stem="w2")) if r.random() < 0.5 else y
    c.output(y)


# Quantized ---------------------------------------------------------------------------------------
def _qparams(r: random.Random, c: Case, dt, n: int | None = None) -> tuple[str, str]:
    scale = np.float32(r.choice((0.02, 0.1, 1.0))) if n is None else np.full(n, 0.05, np.float32)
    zp = np.array(0 if n is None else [0] * n, dtype=dt)
    return c.const(scale, stem="s"), c.const(zp, dtype=dt, stem="zp")


def qdq(r: random.Random, c: Case) -> None:
    """QuantizeLinear/DequantizeLinear around Conv and MatMul (the QDQ form of ORT's quantizer)."""
    c.opset = max(c.opset, 10)
    dt = r.choice((np.int8, np.uint8) + ((np.int16, np.uint16) if c.opset >= 21 else ()))
    ch = r.choice((1, 2, 4))
    shape = [1, ch, r.randint(3, 7), r.randint(3, 7)]
    x = c.input(shape)
    s, z = _qparams(r, c, dt)
    xq = c.one("DequantizeLinear", c.one("QuantizeLinear", x, s, z), s, z)
    per_channel = c.opset >= 13 and r.random() < 0.5
    y, cur = conv(r, c, xq, shape)
    conv_node = c.nodes[-1]
    w_name = conv_node.input[1]
    w_init = next(t for t in c.inits if t.name == w_name)
    wq = numpy_helper.to_array(w_init).clip(-1, 1) * 100
    wi = c.const(wq.astype(np.int8), dtype=np.int8, stem="wq")
    ws, wz = _qparams(r, c, np.int8, w_init.dims[0] if per_channel else None)
    wdq = c.one("DequantizeLinear", wi, ws, wz, **({"axis": 0} if per_channel else {}))
    conv_node.input[1] = wdq
    c.nodes.remove(conv_node)
    c.nodes.append(conv_node)  # after the weight's DequantizeLinear: topological order
    c.inits.remove(w_init)
    s2, z2 = _qparams(r, c, dt)
    y = c.one("DequantizeLinear", c.one("QuantizeLinear", y, s2, z2), s2, z2)
    if r.random() < 0.5 and all(d > 0 for d in cur):
        k = cur[-1]
        mw = c.const((_w(r, k, 3).clip(-1, 1) * 100).astype(np.int8), dtype=np.int8, stem="mq")
        ms, mz = _qparams(r, c, np.int8)
        y = c.one("MatMul", y, c.one("DequantizeLinear", mw, ms, mz))
    c.output(y)


def qoperator(r: random.Random, c: Case) -> None:
    """QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger (the QOperator form)."""
    c.opset = max(c.opset, 10)
    op = r.choice(("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"))
    c.tags.append(op)
    u8 = np.uint8
    if op in ("QLinearConv", "ConvInteger"):
        ch = r.choice((1, 2, 4))
        shape = [1, ch, r.randint(3, 7), r.randint(3, 7)]
        x = c.input(shape, TensorProto.UINT8)
        tmp = Case(opset=c.opset, tags=c.tags)
        tmp.n = c.n
        y, _ = conv(r, tmp, x, shape)
        c.n = tmp.n
        node = tmp.nodes[-1]
        w = numpy_helper.to_array(next(t for t in tmp.inits if t.name == node.input[1]))
        wdt = r.choice((np.int8, u8)) if op == "QLinearConv" else u8
        wq = c.const((np.abs(w) * 10).astype(wdt), dtype=wdt, stem="wq")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if op == "QLinearConv":
            xs, xz = _qparams(r, c, u8)
            ws, wz = _qparams(r, c, wdt)
            ys, yz = _qparams(r, c, u8)
            ins = [x, xs, xz, wq, ws, wz, ys, yz]
            if len(node.input) > 2:
                ins.append(c.const(np.zeros(w.shape[0], np.int32), dtype=np.int32, stem="bq"))
            y = c.one("QLinearConv", *ins, **attrs)
        else:
            y = c.one("ConvInteger", x, wq, **attrs)
        c.output(y, TensorProto.UINT8 if op == "QLinearConv" else TensorProto.INT32)
        return
    m, k, n = r.randint(1, 5), r.randint(1, 5), r.randint(1, 5)
    lead = [r.randint(1, 2) for _ in range(r.randint(0, 2))]
    a = c.input([*lead, m, k], TensorProto.UINT8)
    b = c.const(np.ones((k, n), u8), dtype=u8, stem="bq")
    if op == "QLinearMatMul":
        sa, za = _qparams(r, c, u8)
        sb, zb = _qparams(r, c, u8)
        sy, zy = _qparams(r, c, u8)
        y = c.one("QLinearMatMul", a, sa, za, b, sb, zb, sy, zy)
        c.output(y, TensorProto.UINT8)
    else:
        y = c.one("MatMulInteger", a, b)
        c.output(y, TensorProto.INT32)


# Einsum ------------------------------------------------------------------------------------------
def einsum(r: random.Random, c: Case) -> None:
    c.opset = max(c.opset, 12)
    letters = "abcdefij"
    size = {ch: r.randint(1, 4) for ch in letters}
    terms, shapes = [], []
    use_ell = r.random() < 0.2
    ell = [r.randint(1, 3) for _ in range(r.randint(1, 2))] if use_ell else []
    for _ in range(r.randint(1, 3)):
        term = "".join(r.choice(letters[:5]) for _ in range(r.randint(0, 3)))
        if r.random() < 0.85:
            term = "".join(dict.fromkeys(term))  # mostly no repeated index (a diagonal)
        shp = [size[ch] for ch in term]
        if use_ell and r.random() < 0.7:
            term = "..." + term
            shp = ell + shp
        if r.random() < 0.05 and shp:
            shp[0] += 1
            c.tags.append("einsum_broken_size")
        terms.append(term)
        shapes.append(shp)
    used = "".join(t.replace("...", "") for t in terms)
    if r.random() < 0.7:
        out = "".join(ch for ch in dict.fromkeys(used) if r.random() < 0.6)
        out = ("..." if use_ell and any("..." in t for t in terms) else "") + "".join(r.sample(out, len(out)))
        eq = ",".join(terms) + "->" + out
    else:
        eq = ",".join(terms)
    c.tags.append("einsum")
    ins = []
    for shp in shapes:
        ins.append(c.input(shp) if r.random() < 0.6 else c.const(_w(r, *shp), stem="w"))
    c.output(c.one("Einsum", *ins, equation=eq))


# com.microsoft and other ops whose shapes effconv infers itself -----------------------------------
MS = "com.microsoft"


def ms_ops(r: random.Random, c: Case) -> None:
    """An ONNX Runtime contrib op (QOperator element-wise, Fused*, QGemm, Gelu, SkipLayerNorm)
    between two convolutions: effconv.profile.msshapes must carry the shape to the second one."""
    c.ms, c.opset = True, max(c.opset, 13)
    ch = r.choice((1, 2, 4))
    shape = [1, ch, r.randint(2, 6), r.randint(2, 6)]
    x = c.input(shape)
    op = r.choice(("QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid",
                   "QLinearLeakyRelu", "QLinearAveragePool", "FusedConv", "FusedMatMul", "FusedGemm", "QGemm",
                   "Gelu", "FastGelu", "BiasGelu", "SkipLayerNormalization"))
    c.tags.append(f"ms_{op}")
    u8 = np.uint8
    if op.startswith("QLinear"):
        s, z = _qparams(r, c, u8)
        q = c.one("QuantizeLinear", x, s, z)
        if op in ("QLinearAdd", "QLinearMul"):
            other = c.const(np.ones(r.choice(([ch, 1, 1], shape, [1], [shape[-1]])), u8), dtype=u8, stem="qb")
            y = c.one(op, q, s, z, other, s, z, s, z, domain=MS)
        elif op == "QLinearConcat":
            y = c.one(op, s, z, q, s, z, q, s, z, domain=MS, axis=r.choice((1, 2, 3, -1)))
        elif op == "QLinearAveragePool":
            y = c.one(op, q, s, z, s, z, domain=MS, kernel_shape=[2, 2] if min(shape[2:]) >= 2 else [1, 1],
                      strides=[r.choice((1, 2))] * 2, **({"ceil_mode": 1} if r.random() < 0.3 else {}))
        elif op == "QLinearGlobalAveragePool":
            y = c.one(op, q, s, z, s, z, domain=MS, channels_last=0)
        else:
            y = c.one(op, q, s, z, s, z, domain=MS)
        y = c.one("DequantizeLinear", y, s, z)
    elif op == "FusedConv":
        y, out = conv(r, c, x, shape)
        ch = out[1]
        n = c.nodes[-1]
        n.domain = MS
        n.op_type = "FusedConv"
        n.attribute.append(helper.make_attribute("activation", r.choice(("Relu", "Sigmoid", "Tanh"))))
    elif op in ("FusedMatMul", "FusedGemm", "QGemm"):
        flat = c.one("Flatten", x, axis=1)
        k, n_out = ch * shape[2] * shape[3], r.randint(1, 6)
        tb = r.random() < 0.5
        if op == "QGemm":
            s, z = _qparams(r, c, u8)
            q = c.one("QuantizeLinear", flat, s, z)
            w = c.const(np.ones([n_out, k] if tb else [k, n_out], u8), dtype=u8, stem="qw")
            y = c.one("QGemm", q, s, z, w, s, z, "", s, z, domain=MS, transB=int(tb))
            y = c.one("DequantizeLinear", y, s, z)
        else:
            w = c.const(_w(r, *([n_out, k] if tb else [k, n_out])), stem="w")
            y = c.one(op, flat, w, domain=MS, transB=int(tb), **({"alpha": 0.5} if r.random() < 0.3 else {}))
        y = c.one("Reshape", y, c.const([1, n_out, 1, 1]))
        ch = n_out
    elif op == "SkipLayerNormalization":
        hidden = shape[-1]
        flat = c.one("Reshape", x, c.const([1, -1, hidden]))
        y = c.one(op, flat, flat, c.const(np.ones(hidden, np.float32)), c.const(np.zeros(hidden, np.float32)),
                  domain=MS)
        y = c.one("Reshape", y, c.const(shape))
    else:
        ins = [x] + ([c.const(np.zeros(shape[-1], np.float32))] if op in ("BiasGelu", "FastGelu") else [])
        y = c.one(op, *ins, domain=MS)
    c.output(c.one("Conv", y, c.const(_w(r, 2, ch, 1, 1), stem="w2")))


def misc_ops(r: random.Random, c: Case) -> None:
    """Normalizations, pooling with ceil_mode/pads, Softmax, DepthToSpace, Transpose, LRN before a Conv."""
    ch = r.choice((2, 4, 8))
    shape = [r.choice((1, 2)), ch, r.randint(2, 7), r.randint(2, 7)]
    x = c.input(shape)
    op = r.choice(("LayerNormalization", "InstanceNormalization", "GroupNormalization", "LRN", "MaxPool",
                   "AveragePool", "LpPool", "Softmax", "DepthToSpace", "SpaceToDepth", "Transpose", "PRelu",
                   "GlobalLpPool", "Dropout"))
    c.tags.append(f"misc_{op}")
    if op == "LayerNormalization" and c.opset >= 17:
        y = c.one(op, x, c.const(np.ones(shape[-1], np.float32)), axis=-1)
    elif op == "InstanceNormalization":
        y = c.one(op, x, c.const(np.ones(ch, np.float32)), c.const(np.zeros(ch, np.float32)))
    elif op == "GroupNormalization" and c.opset >= 18:
        n = 2 if c.opset >= 21 else ch // 2 * 0 + 2
        sc = ch if c.opset >= 21 else n
        y = c.one(op, x, c.const(np.ones(sc, np.float32)), c.const(np.zeros(sc, np.float32)), num_groups=2)
    elif op == "LRN":
        y = c.one(op, x, size=r.choice((1, 3, 5)))
    elif op in ("MaxPool", "AveragePool", "LpPool"):
        k = [r.randint(1, min(3, d)) for d in shape[2:]]
        attrs = {"kernel_shape": k, "strides": [r.choice((1, 2))] * 2}
        if r.random() < 0.5:
            attrs["pads"] = [r.randint(0, kk - 1) for kk in k] * 2
        if op != "LpPool" and c.opset >= 10 and r.random() < 0.4:
            attrs["ceil_mode"] = 1
        if op == "MaxPool" and c.opset >= 10 and r.random() < 0.3:
            attrs["dilations"] = [1, 1]
        y = c.one(op, x, **attrs)
    elif op == "Softmax":
        y = c.one(op, x, axis=r.choice((1, -1)))
    elif op in ("DepthToSpace", "SpaceToDepth"):
        if op == "DepthToSpace":
            y = c.one(op, x, blocksize=2)
            ch //= 4
            if ch == 0:
                c.output(y)
                return
        elif shape[2] % 2 == 0 and shape[3] % 2 == 0:
            y = c.one(op, x, blocksize=2)
            ch *= 4
        else:
            y = x
    elif op == "Transpose":
        y = c.one(op, x, perm=[0, 1, 3, 2])
    elif op == "PRelu":
        y = c.one(op, x, c.const(np.full((ch, 1, 1), 0.1, np.float32)))
    elif op == "GlobalLpPool":
        y = c.one(op, x)
    else:
        y = c.one("Dropout", x)
    c.output(c.one("Conv", y, c.const(_w(r, 2, ch, 1, 1), stem="w2")))


BUILDERS = {
    "conv_chain": (conv_chain, 5), "matmul_gemm": (matmul_gemm, 3), "shape_arith": (shape_arith, 4),
    "deep_shape_chain": (deep_shape_chain, 1), "opset_variants": (opset_variants, 4), "blowup": (blowup, 2),
    "subgraphs": (subgraphs, 2), "qdq": (qdq, 2), "qoperator": (qoperator, 2), "einsum": (einsum, 3),
    "ms_ops": (ms_ops, 2), "misc_ops": (misc_ops, 2),
    "corpus": (None, 2),
}


# Edits of any model ------------------------------------------------------------------------------
def _graphs(g: onnx.GraphProto):
    yield g
    for n in g.node:
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                yield from _graphs(sub)


def _nodes(m: onnx.ModelProto) -> list:
    return [n for g in _graphs(m.graph) for n in g.node]


SPATIAL_ATTRS = ("kernel_shape", "strides", "pads", "dilations", "output_padding", "output_shape")
INT_ATTRS = ("group", "axis", "transA", "transB", "keepdims", "ceil_mode", "perm", "axes", "allowzero",
             "start", "end", "to", "count_include_pad", "num_outputs")


def perturb_attribute(r: random.Random, m: onnx.ModelProto) -> None:
    """One int/ints attribute of one node: a nearby value, a zero, a negative or a huge one."""
    cands = [(n, a) for n in _nodes(m) for a in n.attribute if a.name in SPATIAL_ATTRS + INT_ATTRS]
    if not cands:
        return
    _, a = r.choice(cands)

    def near(v: int) -> int:
        return r.choice((v + 1, v - 1, v + 1, 0, 1, 2, -1, v * 2)) if r.random() < 0.95 else r.choice(BIG)

    if a.type == onnx.AttributeProto.INTS and len(a.ints):
        i = r.randrange(len(a.ints))
        a.ints[i] = near(a.ints[i])
        if r.random() < 0.1:
            a.ints.append(near(1))
    elif a.type == onnx.AttributeProto.INT:
        a.i = near(a.i)


SWAPS = (
    ("Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Softsign", "Identity"),
    ("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"),
    ("MaxPool", "AveragePool", "LpPool"),
    ("GlobalAveragePool", "GlobalMaxPool"),
    ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL2"),
    ("Conv", "ConvTranspose"),
    ("MatMul", "Gemm"),
    ("QLinearConv", "QLinearMatMul"),
    ("ConvInteger", "MatMulInteger"),
    ("Squeeze", "Unsqueeze"),
    ("Reshape", "Expand", "Tile"),
    ("Div", "Mod"),
    ("Shape", "Size"),
)


def swap_op(r: random.Random, m: onnx.ModelProto) -> None:
    """An op replaced by another of its family (same inputs and attributes: may not fit)."""
    by_op = {op: fam for fam in SWAPS for op in fam}
    cands = [n for n in _nodes(m) if n.op_type in by_op]
    if cands:
        n = r.choice(cands)
        n.op_type = r.choice([op for op in by_op[n.op_type] if op != n.op_type])


def _bf16(arr: np.ndarray) -> bytes:
    return (np.ascontiguousarray(arr, np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()


def _convert_tensor(t: TensorProto, to: int) -> None:
    if t.data_type != FLOAT or t.data_location == TensorProto.EXTERNAL:
        return
    arr = numpy_helper.to_array(t)
    name = t.name
    if to == TensorProto.BFLOAT16:
        t.Clear()
        t.name, t.data_type, t.raw_data = name, to, _bf16(arr)
        t.dims.extend(arr.shape)
    else:
        with np.errstate(over="ignore"):  # large weights become inf in fp16: still a valid model
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16 if to == TensorProto.FLOAT16 else np.float64), name))


def convert_floats(r: random.Random, m: onnx.ModelProto) -> None:
    """Every float32 tensor, type and Cast target to fp16, bf16 or fp64 (or only the weights)."""
    to = r.choice((TensorProto.FLOAT16, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE))
    only_weights = r.random() < 0.2
    for g in _graphs(m.graph):
        for t in g.initializer:
            _convert_tensor(t, to)
        if only_weights:
            continue
        for vi in (*g.input, *g.output, *g.value_info):
            if vi.type.tensor_type.elem_type == FLOAT:
                vi.type.tensor_type.elem_type = to
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    _convert_tensor(a.t, to)
                elif a.name == "to" and a.i == FLOAT:
                    a.i = to


def int_input(r: random.Random, m: onnx.ModelProto) -> None:
    """A float graph input becomes int8/uint8/fp16/bf16 (usually a type error the checker reports)."""
    ins = [vi for vi in m.graph.input if vi.type.tensor_type.elem_type == FLOAT]
    if ins:
        r.choice(ins).type.tensor_type.elem_type = r.choice((TensorProto.INT8, TensorProto.UINT8,
                                                             TensorProto.FLOAT16, TensorProto.BFLOAT16))


def restamp_opset(r: random.Random, m: onnx.ModelProto) -> None:
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = r.choice(OPSETS)
            m.ir_version = max(m.ir_version, helper.find_min_ir_version_for([o]))


def strip_shapes(r: random.Random, m: onnx.ModelProto) -> None:
    """No value_info, no output shapes: effconv infers every shape itself."""
    for g in _graphs(m.graph):
        del g.value_info[:]
        for vi in g.output:  # keep the rank (the checker wants a shape), forget the dims
            for d in vi.type.tensor_type.shape.dim:
                d.Clear()


def symbolic_batch(r: random.Random, m: onnx.ModelProto) -> None:
    for vi in m.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and r.random() < 0.8:
            dims[0].dim_param = r.choice(("N", "batch"))


def resize_weight(r: random.Random, m: onnx.ModelProto) -> None:
    """One float initializer's dim changed by one (the weight no longer fits its node)."""
    ws = [t for t in m.graph.initializer if t.data_type == FLOAT and len(t.dims)]
    if not ws:
        return
    t = r.choice(ws)
    dims = list(t.dims)
    i = r.randrange(len(dims))
    dims[i] = max(1, dims[i] + r.choice((-1, 1, 1)))
    t.CopyFrom(numpy_helper.from_array(_w(r, *dims), t.name))


EDITS = {
    "perturb_attribute": perturb_attribute, "swap_op": swap_op, "convert_floats": convert_floats,
    "int_input": int_input, "restamp_opset": restamp_opset, "strip_shapes": strip_shapes,
    "symbolic_batch": symbolic_batch, "resize_weight": resize_weight,
}
EDIT_WEIGHTS = {"perturb_attribute": 4, "swap_op": 3, "convert_floats": 3, "int_input": 1, "restamp_opset": 1,
                "strip_shapes": 2, "symbolic_batch": 2, "resize_weight": 1}


def generate(r: random.Random, seeds: dict[str, bytes]) -> tuple[bytes, list[str], bool]:
    """One structured fuzz input: (ONNX bytes, tags, whether ONNX Runtime may run it)."""
    names = list(BUILDERS)
    pick = r.choices(names, [BUILDERS[k][1] for k in names])[0]
    if pick == "corpus":
        seed = r.choice(sorted(seeds))
        m = onnx.ModelProto()
        m.ParseFromString(seeds[seed])
        tags, ort, n_edits = [f"corpus:{seed}"], "external" not in seed, r.choice((1, 1, 2))
    else:
        c = Case(opset=r.choice(OPSETS), tags=[pick])
        BUILDERS[pick][0](r, c)
        m, tags, ort = c.model(), c.tags, c.ort
        n_edits = r.choices((0, 1, 2), (0.55, 0.3, 0.15))[0]
    edits = list(EDITS)
    for name in r.choices(edits, [EDIT_WEIGHTS[e] for e in edits], k=n_edits):
        EDITS[name](r, m)
        tags.append(name)
    return m.SerializeToString(), tags, ort
