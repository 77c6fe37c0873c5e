"""ONNX's Attention op (opset 23) counted as the two matrix products it is, closed form:
B*Hq*Sq*Skv*(D + Dv); grouped-query K/V heads broadcast; 3-D inputs name their heads. (Past keys,
which the handler adds to Skv, are not covered here.)"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from effconv.profile import profile_onnx


def _model(q, k, v, out, **attrs):
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], name="attn", **attrs)
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in zip("qkv", (q, k, v))]
    g = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])
    m.ir_version = 10
    return m


@pytest.mark.parametrize("q,k,v,attrs,want", [
    ((2, 4, 16, 8), (2, 4, 12, 8), (2, 4, 12, 6), {}, 2 * 4 * 16 * 12 * (8 + 6)),
    ((2, 4, 16, 8), (2, 2, 16, 8), (2, 2, 16, 8), {}, 2 * 4 * 16 * 16 * 16),  # grouped query: 2 KV heads
    ((2, 16, 32), (2, 12, 16), (2, 12, 16), {"q_num_heads": 4, "kv_num_heads": 2}, 2 * 4 * 16 * 12 * 16),
])
def test_attention_closed_form(save, q, k, v, attrs, want):
    if attrs:  # 3-D: [B, Sq, Hq * Dv]
        out = (q[0], q[1], attrs["q_num_heads"] * (v[2] // attrs["kv_num_heads"]))
    else:  # 4-D: [B, Hq, Sq, Dv]
        out = (*q[:3], v[3])
    model = _model(q, k, v, list(out), **attrs)
    onnx.checker.check_model(model)
    prof = profile_onnx(save(model), strict=True)
    assert prof.totals.mult_adds == want and prof.complete
    assert prof.layers[0].type == "Attention"
