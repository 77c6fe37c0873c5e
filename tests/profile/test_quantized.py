"""Quantized ONNX models profile exactly like the float model they came from.

The float model is exported by effconv (a zoo MobileNet v1 and a small conv + token-MLP net that
exports MatMul), then quantized by ONNX Runtime itself: quantize_static in QDQ form (DequantizeLinear
feeding Conv/Gemm/MatMul, per channel) and in QOperator form (QLinearConv, QLinearMatMul, QGemm), and
quantize_dynamic (ConvInteger, MatMulInteger after DynamicQuantizeLinear).

Oracles: the float model's own profile, checked first against FlopCounterMode on the torch module
(Mult-Adds = FLOPs / 2); the quantized weight elements are counted here from the file itself (the
int8/uint8 tensors in a quantized op's weight slot, or dequantized into a float op's weight slot),
and so are the bytes of every stored integer parameter by type (int8/uint8 weights, int32 biases, a
quantized Add's constant; scales and zero points are not parameters).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
quantization = pytest.importorskip("onnxruntime.quantization")
from torch import nn  # noqa: E402

from effconv.profile import profile_onnx  # noqa: E402

# Which input of which op holds a weight: float ops (reached through DequantizeLinear) and the
# quantized ops ONNX Runtime emits (QOperator and dynamic forms).
FLOAT_WEIGHT_SLOTS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (0, 1), "MatMul": (0, 1)}
QUANT_WEIGHT_SLOTS = {"QLinearConv": (3,), "QLinearMatMul": (0, 3), "QGemm": (0, 3),
                      "ConvInteger": (1,), "MatMulInteger": (0, 1)}
INT_TYPES = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8"}


class TokenNet(nn.Module):
    """Conv stem, tokens, a Linear on [B, T, C] (exports MatMul + Add), mean, classifier (Gemm)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16)
        self.mlp = nn.Linear(16, 32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        t = self.dw(self.stem(x).relu()).relu().flatten(2).transpose(1, 2)
        return self.fc(self.mlp(t).relu().mean(1))


def _build(name):
    torch.manual_seed(0)
    if name == "token_net":
        return TokenNet(), (1, 3, 16, 16)
    from effconv.specs import load_spec
    from effconv.zoo import build_model

    spec = load_spec(name)
    return build_model(spec), tuple(spec.input_shape(1))


def _inline_identity_initializers(path):
    """torch dedupes equal tensors (e.g. the folded biases of a fresh BatchNorm) into Identity nodes
    of one initializer; ORT's QOperator quantizer then fails on the bias. Give each reader its copy
    (the float reference is this same rewritten file, so the counts still compare like with like)."""
    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    keep = []
    for node in m.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.save(m, str(path))


def _quantize(fmt, src, dst, shape):
    q = quantization

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.feeds = iter([{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.feeds, None)

    if fmt == "dynamic":
        q.quantize_dynamic(str(src), str(dst), op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                           weight_type=q.QuantType.QInt8)
        return
    quant_format, per_channel, wtype = {
        "qdq_per_channel": (q.QuantFormat.QDQ, True, q.QuantType.QInt8),
        "qdq_uint8_weights": (q.QuantFormat.QDQ, False, q.QuantType.QUInt8),
        "qoperator": (q.QuantFormat.QOperator, False, q.QuantType.QInt8),
        "qoperator_per_channel": (q.QuantFormat.QOperator, True, q.QuantType.QInt8),
    }[fmt]
    q.quantize_static(str(src), str(dst), Reader(), quant_format=quant_format, per_channel=per_channel,
                      weight_type=wtype, activation_type=q.QuantType.QUInt8)


def quantized_weight_elements(path) -> dict[str, int]:
    """{"int8"/"uint8": elements} of the integer weight tensors of the counted ops, from the file."""
    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    dq_of = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "DequantizeLinear"}
    found: dict[str, int] = {}
    seen = set()
    for node in m.graph.node:
        slots = [node.input[i] for i in QUANT_WEIGHT_SLOTS.get(node.op_type, ()) if i < len(node.input)]
        slots += [dq_of[node.input[i]] for i in FLOAT_WEIGHT_SLOTS.get(node.op_type, ())
                  if i < len(node.input) and node.input[i] in dq_of]
        for name in slots:
            t = inits.get(name)
            if t is None or t.data_type not in INT_TYPES or name in seen:
                continue
            seen.add(name)
            key = INT_TYPES[t.data_type]
            found[key] = found.get(key, 0) + int(np.prod(t.dims))
    return found


# The data inputs (not scales, not zero points) of the ops that read stored integer tensors.
DATA_SLOTS = {"DequantizeLinear": (0,), "QLinearConv": (0, 3, 8), "QLinearMatMul": (0, 3), "QGemm": (0, 3, 6),
              "ConvInteger": (0, 1), "MatMulInteger": (0, 1), "QLinearAdd": (0, 3), "QLinearMul": (0, 3)}
BYTE_TYPES = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT32: "int32"}


def quantized_parameter_bytes(path) -> dict[str, int]:
    """Bytes by data type of the stored integer parameters: every initializer read as data (weights,
    int32 biases, a quantized Add's constant), not as a scale or zero point."""
    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    found: dict[str, int] = {}
    seen = set()
    for node in m.graph.node:
        for i in DATA_SLOTS.get(node.op_type, ()):
            name = node.input[i] if i < len(node.input) else ""
            t = inits.get(name)
            if t is None or t.data_type not in BYTE_TYPES or name in seen:
                continue
            seen.add(name)
            key = BYTE_TYPES[t.data_type]
            found[key] = found.get(key, 0) + int(np.prod(t.dims)) * (4 if key == "int32" else 1)
    return found


def _flop_oracle(module, shape) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module.eval()(torch.randn(*shape))
    return counter.get_total_flops() // 2


@pytest.fixture(scope="module")
def float_models(tmp_path_factory):
    from effconv.export.onnx import export_onnx

    cache = {}

    def get(name):
        if name not in cache:
            module, shape = _build(name)
            path = export_onnx(module, tmp_path_factory.mktemp(name) / "float.onnx", shape)
            _inline_identity_initializers(path)
            cache[name] = path, shape, _flop_oracle(module, shape)
        return cache[name]

    return get


def _typed(prof):
    return {t.type: (t.mult_adds, t.weights) for t in prof.by_type if t.mult_adds or t.weights}


MODELS = ("mobilenet_v1_cifar", "token_net")
FORMATS = ("qdq_per_channel", "qdq_uint8_weights", "qoperator", "qoperator_per_channel", "dynamic")
EXPECTED_OPS = {"qdq_per_channel": {"DequantizeLinear", "Conv"}, "qdq_uint8_weights": {"DequantizeLinear", "Conv"},
                "qoperator": {"QLinearConv", "QGemm"}, "qoperator_per_channel": {"QLinearConv", "QGemm"},
                "dynamic": {"ConvInteger", "MatMulInteger"}}


@pytest.mark.parametrize("model", MODELS)
def test_float_reference_matches_flop_counter(float_models, model):
    path, _, oracle = float_models(model)
    prof = profile_onnx(path)
    assert prof.totals.mult_adds == oracle
    assert "Fully Connected" in _typed(prof)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", MODELS)
def test_quantized_counts_like_float(float_models, tmp_path, model, fmt):
    fpath, shape, _ = float_models(model)
    qpath = tmp_path / f"{fmt}.onnx"
    _quantize(fmt, fpath, qpath, shape)
    ops = {n.op_type for n in onnx.load(str(qpath)).graph.node}
    assert EXPECTED_OPS[fmt] <= ops, ops  # the form under test really is in the file
    ref, prof = profile_onnx(fpath), profile_onnx(qpath)
    assert prof.totals.mult_adds == ref.totals.mult_adds, prof.unsupported
    assert prof.totals.weights == ref.totals.weights
    assert prof.totals.biases == ref.totals.biases  # int32 biases and quantized Add constants too
    assert _typed(prof) == _typed(ref)
    assert "Fully Connected" in _typed(prof)
    assert prof.complete is True, prof.uncounted
    assert not any(k.startswith(("QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger"))
                   for k in prof.unsupported), prof.unsupported
    weights = quantized_weight_elements(qpath)
    assert sum(weights.values()) == ref.totals.weights  # every weight of the model was quantized
    params = quantized_parameter_bytes(qpath)
    for dtype, elements in weights.items():  # one byte per int8/uint8 weight element, and in the total
        assert params[dtype] >= elements
    got = {k: prof.totals.weight_bytes.get(k, 0) for k in BYTE_TYPES.values()}
    assert got == {k: params.get(k, 0) for k in BYTE_TYPES.values()}, prof.totals.weight_bytes
    doc = prof.to_dict()
    assert doc["complete"] is True and doc["uncounted"] == []
    assert doc["totals"]["weight_bytes"] == dict(prof.totals.weight_bytes)
