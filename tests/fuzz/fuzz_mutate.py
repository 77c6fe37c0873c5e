"""Mutators of ONNX files for the fuzz harness: as bytes (bit flips, truncation, splices, inserts)
and as protobuf fields (dims, attributes, data types, op types, initializer sizes, external data,
versions, graph structure, nesting). Every choice comes from the `random.Random` passed in, so a
seed (benchmarks/fuzz_profile.py) or Hypothesis's `st.randoms()` (tests) replays an input exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

CORPUS = Path(__file__).resolve().parent / "corpus"
EDGE_INTS = (0, 1, 2, 3, -1, -2, 7, 255, 2**16, 2**31 - 1, -(2**31), 2**40, 2**62)
OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul", "If", "Loop", "Scan", "Reshape", "ConstantOfShape",
            "BatchNormalization", "MaxPool", "Pad", "Concat", "Slice", "Identity", "Constant", "Relu", "NoSuchOp", "")
ATTRS = ("group", "kernel_shape", "strides", "pads", "dilations", "auto_pad", "axis", "transB", "perm", "value")
LOCATIONS = ("weights.bin", "../weights.bin", "/etc/passwd", "link.bin", "missing.bin", "", "sub/../../x.bin",
             "weights.bin/x", "C:\\w.bin", ".", "sparse.bin")
OFFSETS = ("0", "16", "-1", "abc", "99999999999", "18446744073709551616", "", "1e3", " 4")


def corpus() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.onnx"))}


# Byte mutations -----------------------------------------------------------------------------------
def flip_bits(r: random.Random, data: bytes, others) -> bytes:
    buf = bytearray(data)
    for _ in range(r.randint(1, 8)):
        if buf:
            buf[r.randrange(len(buf))] ^= 1 << r.randrange(8)
    return bytes(buf)


def truncate(r: random.Random, data: bytes, others) -> bytes:
    return data[: r.randrange(len(data) + 1)]


def splice(r: random.Random, data: bytes, others) -> bytes:
    other = r.choice(others)
    return data[: r.randrange(len(data) + 1)] + other[r.randrange(len(other) + 1):]


def insert_bytes(r: random.Random, data: bytes, others) -> bytes:
    at = r.randrange(len(data) + 1)
    junk = bytes(r.randrange(256) for _ in range(r.randint(1, 32)))
    return data[:at] + junk + data[at:]


def overwrite(r: random.Random, data: bytes, others) -> bytes:
    at = r.randrange(len(data) + 1)
    junk = bytes(r.choice((0, 0xFF, r.randrange(256))) for _ in range(r.randint(1, 16)))
    return (data[:at] + junk + data[at + len(junk):])[: max(len(data), at + len(junk))]


BYTE_MUTATORS: dict[str, Callable] = {
    "flip_bits": flip_bits, "truncate": truncate, "splice": splice, "insert": insert_bytes, "overwrite": overwrite,
}


# Protobuf mutations -------------------------------------------------------------------------------
def _value_infos(g: onnx.GraphProto) -> list:
    return [*g.input, *g.output, *g.value_info]


def mutate_dims(r: random.Random, m: onnx.ModelProto) -> None:
    g = m.graph
    if r.random() < 0.5 and g.initializer:
        t = r.choice(g.initializer)
        if t.dims and r.random() < 0.7:
            t.dims[r.randrange(len(t.dims))] = r.choice(EDGE_INTS)
        else:
            t.dims.append(r.choice(EDGE_INTS))
        return
    vis = [v for v in _value_infos(g) if v.type.HasField("tensor_type")]
    if vis:
        shape = r.choice(vis).type.tensor_type.shape
        if shape.dim and r.random() < 0.7:
            d = shape.dim[r.randrange(len(shape.dim))]
            d.dim_param = "N" if r.random() < 0.3 else ""
            if not d.dim_param:
                d.dim_value = r.choice(EDGE_INTS)
        else:
            shape.dim.add().dim_value = r.choice(EDGE_INTS)


def mutate_attribute(r: random.Random, m: onnx.ModelProto) -> None:
    if not m.graph.node:
        return
    node = r.choice(m.graph.node)
    name = r.choice(ATTRS)
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    kind = r.choice(("int", "ints", "string", "float", "empty"))
    if kind == "int":
        value = r.choice(EDGE_INTS)
    elif kind == "ints":
        value = [r.choice(EDGE_INTS) for _ in range(r.randint(0, 8))]
    elif kind == "string":
        value = r.choice(("SAME_UPPER", "VALID", "NOTSET", "bogus"))
    elif kind == "float":
        value = r.choice((0.0, -1.0, 1e30, float("nan")))
    else:
        node.attribute.add().name = name  # an attribute with no type and no value
        return
    node.attribute.append(helper.make_attribute(name, value))


def mutate_dtype(r: random.Random, m: onnx.ModelProto) -> None:
    choice = r.randrange(26)
    if r.random() < 0.5 and m.graph.initializer:
        r.choice(m.graph.initializer).data_type = choice
    else:
        vis = [v for v in _value_infos(m.graph) if v.type.HasField("tensor_type")]
        if vis:
            r.choice(vis).type.tensor_type.elem_type = choice


def mutate_op_type(r: random.Random, m: onnx.ModelProto) -> None:
    if m.graph.node:
        node = r.choice(m.graph.node)
        if r.random() < 0.85:
            node.op_type = r.choice(OP_TYPES)
        else:
            node.domain = r.choice(("com.microsoft", "ai.onnx.ml", "x"))


def mutate_initializer_size(r: random.Random, m: onnx.ModelProto) -> None:
    inits = [t for t in m.graph.initializer if t.data_location != TensorProto.EXTERNAL]
    if not inits:
        return
    t = r.choice(inits)
    raw = t.raw_data or b"".join(int(v).to_bytes(4, "little", signed=False) for v in range(len(t.float_data)))
    action = r.choice(("cut", "grow", "clear", "float_data"))
    t.ClearField("float_data")
    if action == "cut":
        t.raw_data = raw[: r.randrange(len(raw) + 1)]
    elif action == "grow":
        t.raw_data = raw + bytes(r.randint(1, 64))
    elif action == "clear":
        t.ClearField("raw_data")
    else:
        t.ClearField("raw_data")
        t.float_data.extend([1.0] * r.randint(0, 10))


def mutate_external(r: random.Random, m: onnx.ModelProto) -> None:
    tensors = list(m.graph.initializer)
    if not tensors:
        return
    t = r.choice(tensors)
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.ClearField("external_data")
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", r.choice(LOCATIONS))]
    if r.random() < 0.7:
        entries.append(("offset", r.choice(OFFSETS)))
    if r.random() < 0.7:
        entries.append(("length", r.choice(OFFSETS)))
    for key, value in entries:
        e = t.external_data.add()
        e.key, e.value = key, value


def mutate_versions(r: random.Random, m: onnx.ModelProto) -> None:
    if r.random() < 0.5:
        m.ir_version = r.choice((0, 1, 3, 7, 8, 9, 10, 11, 12, 13, 99, 2**31 - 1))
    elif m.opset_import:
        m.opset_import[0].version = r.choice((0, 1, 7, 11, 13, 17, 21, 22, 23, 24, 25, 99, -1))


def mutate_structure(r: random.Random, m: onnx.ModelProto) -> None:
    g = m.graph
    action = r.choice(("drop_node", "dup_node", "rewire", "drop_output", "add_input", "drop_input"))
    if action == "drop_node" and g.node:
        del g.node[r.randrange(len(g.node))]
    elif action == "dup_node" and g.node:
        g.node.insert(r.randrange(len(g.node) + 1), r.choice(g.node))
    elif action == "rewire" and g.node:
        node = r.choice(g.node)
        names = [v.name for v in g.input] + [o for n in g.node for o in n.output] + ["nowhere", ""]
        if node.input:
            node.input[r.randrange(len(node.input))] = r.choice(names)
        else:
            node.input.append(r.choice(names))
    elif action == "drop_output" and g.output:
        del g.output[r.randrange(len(g.output))]
    elif action == "add_input":
        g.input.append(helper.make_tensor_value_info(f"extra{r.randrange(9)}", TensorProto.FLOAT, ["B", 3]))
    elif action == "drop_input" and g.input:
        del g.input[r.randrange(len(g.input))]


def nest_in_if(r: random.Random, m: onnx.ModelProto) -> None:
    """Wrap the graph's nodes in `depth` nested If nodes (then: one level deeper; else: the original
    nodes), so the file grows linearly with the depth."""
    g = m.graph
    leaf = helper.make_graph(list(g.node), "leaf", [], list(g.output))
    inner = leaf
    for depth in range(r.choice((1, 2, 5, 12, 30))):  # 30: near protobuf's nesting limit
        node = helper.make_node("If", ["cond"], [o.name for o in g.output], then_branch=inner, else_branch=leaf)
        inner = helper.make_graph([node], f"level{depth}", [], list(g.output))
    g.ClearField("node")
    g.node.extend(inner.node)
    g.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))


def huge_constant_of_shape(r: random.Random, m: onnx.ModelProto) -> None:
    """A ConstantOfShape whose shape asks for up to 2**62 elements."""
    dims = [r.choice((2**20, 2**31, 10**9, 2**62, 0, -1)) for _ in range(r.randint(1, 3))]
    shape = helper.make_tensor("huge_shape", TensorProto.INT64, [len(dims)], dims)
    m.graph.node.insert(0, helper.make_node("Constant", [], ["huge_s"], value=shape))
    m.graph.node.insert(1, helper.make_node("ConstantOfShape", ["huge_s"], ["huge"]))
    if r.random() < 0.5:
        m.graph.output.append(helper.make_tensor_value_info("huge", TensorProto.FLOAT, None))


PROTO_MUTATORS: dict[str, Callable] = {
    "dims": mutate_dims, "attribute": mutate_attribute, "dtype": mutate_dtype, "op_type": mutate_op_type,
    "initializer_size": mutate_initializer_size, "external": mutate_external, "versions": mutate_versions,
    "structure": mutate_structure, "nest_if": nest_in_if, "constant_of_shape": huge_constant_of_shape,
}


def mutate(r: random.Random, seeds: dict[str, bytes]) -> tuple[bytes, list[str]]:
    """One fuzz input: a corpus file with 1-3 protobuf mutations and/or 1-2 byte mutations."""
    name = r.choice(sorted(seeds))
    applied = [name]
    data = seeds[name]
    if r.random() < 0.75:
        model = onnx.ModelProto()
        model.ParseFromString(data)
        for _ in range(r.randint(1, 3)):
            key = r.choice(sorted(PROTO_MUTATORS))
            try:
                PROTO_MUTATORS[key](r, model)
            except (ValueError, TypeError, OverflowError, DecodeError):  # the mutation itself is invalid
                continue
            applied.append(key)
        data = model.SerializeToString()
    if len(applied) == 1 or r.random() < 0.3:
        others = list(seeds.values())
        for _ in range(r.randint(1, 2)):
            key = r.choice(sorted(BYTE_MUTATORS))
            data = BYTE_MUTATORS[key](r, data, others)
            applied.append(key)
    return data, applied
