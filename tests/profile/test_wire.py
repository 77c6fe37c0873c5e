"""effconv.profile.wire reads a model without its large weights. Oracle: the whole file parsed by
protobuf, with those raw_data fields cleared: the stripped bytes must parse to exactly that, and
the recorded lengths must be the cleared fields' lengths; bytes it cannot walk raise Malformed."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from effconv.profile import profile_onnx
from effconv.profile.graph import STRIP_MIN_FILE
from effconv.profile.wire import STRIP_MIN_BYTES, Malformed, strip_weights


def _tensor(name: str, n: int) -> TensorProto:
    return TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[n], raw_data=np.arange(n, dtype=np.float32).tobytes())


def _merged_model_bytes() -> bytes:
    """Two ModelProto messages back to back: protobuf merges them (the graph field appears twice,
    initializers concatenate), and one tensor carries raw_data twice (the last one counts)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                          [_tensor("big0", 300_000), _tensor("small", 10), _tensor("medium", 4_000)])
    first = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    twice = _tensor("twice", 8).SerializeToString() + TensorProto(raw_data=b"\1" * 40_000).SerializeToString()
    second = onnx.ModelProto(graph=onnx.GraphProto(initializer=[_tensor("big2", 20_000)])).SerializeToString()
    third = onnx.ModelProto(graph=onnx.GraphProto(initializer=[TensorProto.FromString(twice)])).SerializeToString()
    return first + second + third


def _oracle(data: bytes, lengths: dict[int, int]) -> onnx.ModelProto:
    full = onnx.ModelProto.FromString(data)
    for i, t in enumerate(full.graph.initializer):
        if i in lengths:
            assert lengths[i] == len(t.raw_data) > STRIP_MIN_BYTES
            t.ClearField("raw_data")
        else:
            assert len(t.raw_data) <= STRIP_MIN_BYTES
    return full


def test_merged_graphs_and_repeated_raw_data_strip_like_protobuf_parses(tmp_path):
    data = _merged_model_bytes()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    stripped, lengths = strip_weights(path)
    assert sorted(lengths) == [0, 3, 4]  # big0 (1.2 MB), big2 (80 KB), twice (its last raw_data, 40 KB); medium (16,000 B) stays
    assert onnx.ModelProto.FromString(stripped) == _oracle(data, lengths)
    assert len(stripped) < len(data) - 1_300_000


def test_profile_of_a_large_model_reads_the_same_through_the_stripped_path(tmp_path):
    """Conv weights over STRIP_MIN_FILE: counts equal the closed form, and a wrong byte count in a
    weight that was never read is still refused with both numbers."""
    def model(extra: int):
        w = np.ones((8192, 4, 3, 3), np.float32).tobytes() + b"\0" * extra
        g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8192, 6, 6])],
                              [TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8192, 4, 3, 3], raw_data=w)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        path = tmp_path / f"conv{extra}.onnx"
        onnx.save(m, path)
        assert path.stat().st_size > STRIP_MIN_FILE
        return path

    prof = profile_onnx(model(0))
    assert prof.totals.mult_adds == 8192 * 4 * 9 * 36 and prof.totals.weights == 8192 * 4 * 9
    from effconv.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"holds 1179652 bytes where its shape \[8192, 4, 3, 3\] needs 1179648"):
        profile_onnx(model(4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bytes_strip_exactly_or_raise_malformed(tmp_path, data):
    """Byte flips, truncation and insertion anywhere in the file: where protobuf parses the
    result, strip_weights either raises Malformed or agrees with the oracle."""
    base = bytearray(_merged_model_bytes())
    # the structure lies in the first and last bytes; the weights in between rarely matter
    hot = st.one_of(st.integers(0, 400), st.integers(len(base) - 60_000, len(base) - 1))
    for _ in range(data.draw(st.integers(1, 4))):
        kind, pos = data.draw(st.sampled_from(["flip", "cut", "insert"])), data.draw(hot) % len(base)
        if kind == "flip":
            base[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del base[pos:]
        else:
            base[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        if not base:
            return
    path = tmp_path / "m.onnx"
    path.write_bytes(bytes(base))
    try:
        full = onnx.ModelProto.FromString(bytes(base))
    except Exception:
        return  # the caller parses the whole file and reports it
    del full
    try:
        stripped, lengths = strip_weights(path)
    except Malformed:
        return
    assert onnx.ModelProto.FromString(stripped) == _oracle(bytes(base), lengths)
