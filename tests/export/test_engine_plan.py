"""effconv.export.engine_plan: the optimization profile of a dynamic input and the Q/DQ form of a
file, decided before TensorRT is imported (so tested everywhere, TensorRT or not).

Oracles: profiles written out by hand from the rules in the module docstring (and the profile
effconv always gave a dynamic-batch export: 1 / 1 / 256); Q/DQ files written by ONNX Runtime's own
quantizer in both forms (uint8 asymmetric, as effconv's int8 ONNX; int8 symmetric, as TensorRT
takes it).
"""

from __future__ import annotations

import numpy as np
import pytest

from effconv.errors import InvalidInputError, UsageError
from effconv.export.engine_plan import MAX_BATCH, ProfileShapes, profile_shapes, quantization_mode


@pytest.mark.parametrize("dims, requested, batch, expected", [
    # the dynamic-batch export effconv always made: min 1, opt 1, max 256 (TensorRT spells it -1)
    ((-1, 3, 32, 32), None, 1, ((1, 3, 32, 32), (1, 3, 32, 32), (256, 3, 32, 32))),
    ((None, 3, 32, 32), None, 8, ((1, 3, 32, 32), (8, 3, 32, 32), (256, 3, 32, 32))),
    # symbolic height and width: fixed at the requested size, the batch still a range
    ((None, 3, None, None), (4, 3, 224, 224), 1, ((1, 3, 224, 224), (4, 3, 224, 224), (256, 3, 224, 224))),
    # a requested batch above 256 raises the maximum to it
    ((None, 3, 32, 32), (512, 3, 32, 32), 1, ((1, 3, 32, 32), (512, 3, 32, 32), (512, 3, 32, 32))),
    # a fixed batch with symbolic spatial dims: nothing is a range
    ((2, 3, None, None), (2, 3, 96, 128), 1, ((2, 3, 96, 128), (2, 3, 96, 128), (2, 3, 96, 128))),
    # one-dimensional features (rank 2)
    ((None, 40), None, 1, ((1, 40), (1, 40), (256, 40))),
])
def test_profile_follows_the_rules(dims, requested, batch, expected):
    shapes = profile_shapes("input", dims, requested, batch=batch)
    assert shapes == ProfileShapes("input", *expected)
    assert all(lo <= op <= hi for lo, op, hi in zip(shapes.min, shapes.opt, shapes.max))


@pytest.mark.parametrize("dims, requested", [((1, 3, 32, 32), None), ((1, 3, 32, 32), (1, 3, 32, 32))])
def test_fixed_shapes_need_no_profile(dims, requested):
    assert profile_shapes("x", dims, requested) is None


@pytest.mark.parametrize("dims, requested, message", [
    ((None, 3, None, None), None, "give --input-shape x=Nx3xDxD"),
    ((None, 3, 32, 32), (1, 3, 32), "has 3 dimensions; input 'x' has 4"),
    ((1, 3, 32, 32), (1, 3, 64, 64), "does not match the fixed shape 1x3x32x32 of input 'x' (dimension 2)"),
    ((None, 3, 32, 32), (8, 1, 32, 32), "(dimension 1)"),
])
def test_bad_requests_are_usage_errors(dims, requested, message):
    with pytest.raises(UsageError) as err:
        profile_shapes("x", dims, requested)
    assert message in str(err.value)


def test_max_batch_is_the_engine_runner_s_chunk():
    from effconv.export import tensorrt

    assert tensorrt.MAX_BATCH == MAX_BATCH == 256  # one constant: the runner never feeds more than the profile takes


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, onnx_kit):
    """A float file and its two Q/DQ copies, quantized by ONNX Runtime."""
    folder = tmp_path_factory.mktemp("qdq")
    return {"float": onnx_kit.model(folder / "f.onnx", dims=("N", 3, 8, 8)),
            "uint8": onnx_kit.qdq(folder / "uint8.onnx", symmetric=False),
            "int8": onnx_kit.qdq(folder / "int8.onnx", symmetric=True)}


def test_quantization_mode_reads_the_q_dq_form(quantized):
    import onnx

    load = (lambda k: onnx.load(str(quantized[k])))
    assert quantization_mode(load("float"), quantized["float"]) is None
    assert quantization_mode(load("int8"), quantized["int8"]) == "qdq-int8"
    with pytest.raises(InvalidInputError, match="quantizes as uint8; TensorRT runs int8 Q/DQ with zero point 0 only"):
        quantization_mode(load("uint8"), quantized["uint8"])


def test_a_nonzero_int8_zero_point_and_a_missing_one_are_refused(quantized):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(quantized["int8"]))
    point = next(t for t in model.graph.initializer if t.name.endswith("zero_point"))
    point.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(point).shape, 3, np.int8), point.name))
    with pytest.raises(InvalidInputError, match="int8 with a nonzero zero point"):
        quantization_mode(model, quantized["int8"])
    model = onnx.load(str(quantized["int8"]))
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    del q.input[2:]  # ONNX's default zero point: uint8 0
    with pytest.raises(InvalidInputError, match="quantizes as uint8"):
        quantization_mode(model, quantized["int8"])
