"""CapsNet through the zoo, ONNX (routing unrolled, W_ij as MatMul), ONNX Runtime and the profiler."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from effconv.export.onnx import export_onnx
from effconv.zoo.capsnet import CapsNet

# 32 -> stem 5x5 stride 2 -> 14 -> primary 5x5 stride 2 -> 5x5 positions x 4 types = 100 capsules
SMALL = dict(stem_channels=8, stem_kernel=5, stem_stride=2, primary_types=4, primary_kernel=5, decoder_hidden=(16,))
NUM_IN, IN_DIM, NUM_OUT, OUT_DIM = 100, 8, 10, 16


def _export(tmp_path, iterations: int, batch: int):
    torch.manual_seed(0)
    model = CapsNet(**SMALL, routing_iterations=iterations).eval()
    path = export_onnx(model, tmp_path / "caps.onnx", (batch, 3, 32, 32))
    return model, path


def _matmuls(path):
    graph = onnx.load(str(path)).graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "MatMul"]
    weighted = [shapes[i] for n in nodes for i in n.input if i in shapes]
    return graph, nodes, weighted


@pytest.mark.parametrize("iterations", [1, 3])
def test_onnx_has_w_ij_matmul_and_unrolled_routing(tmp_path, iterations):
    _, path = _export(tmp_path, iterations, batch=2)
    graph, nodes, weighted = _matmuls(path)
    # one MatMul against the W_ij weight; per iteration one for s_j, and one for the agreement
    # after every iteration but the last
    assert weighted == [(NUM_IN, IN_DIM, NUM_OUT * OUT_DIM)]
    assert len(nodes) == 1 + iterations + (iterations - 1)
    assert not {"Loop", "If", "Scan", "Einsum"} & {n.op_type for n in graph.node}


def test_onnx_runtime_matches_pytorch(tmp_path):
    import onnxruntime as ort

    model, path = _export(tmp_path, 3, batch=4)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        want = model(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == (4, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_profiler_counts_capsule_layer_in_closed_form(tmp_path):
    profile = pytest.importorskip("effconv.profile")
    _, path = _export(tmp_path, 3, batch=1)
    prof = profile.profile_onnx(path)
    w_ij = NUM_IN * IN_DIM * NUM_OUT * OUT_DIM  # one multiply-add per weight per image
    routing = (3 + 2) * NUM_OUT * NUM_IN * OUT_DIM  # 3 weighted sums s_j + 2 agreement updates
    convs = 14 * 14 * 8 * (3 * 5 * 5) + 5 * 5 * 32 * (8 * 5 * 5)
    matmul_layers = [layer for layer in prof.layers if layer.op_type == "MatMul"]
    assert sorted(layer.mult_adds for layer in matmul_layers)[-1] == w_ij
    assert sum(layer.weights for layer in matmul_layers) == w_ij
    assert prof.totals.mult_adds == convs + w_ij + routing
    assert prof.totals.weights == (3 * 8 * 25 + 8 * 32 * 25) + w_ij  # decoder is not exported


def test_zoo_spec_builds_and_scores_in_unit_range():
    from effconv.specs import load_spec
    from effconv.zoo import build_model, count_parameters, with_arch

    spec = load_spec("capsnet_cifar")
    with torch.device("meta"):  # the full model's shapes without allocating it
        assert build_model(spec).num_primary == 8 * 8 * 32  # 32 -> 24 (9x9) -> 8 (9x9 s2), 32 types
    w_ij = 2048 * 8 * 10 * 16
    stem, primary = 3 * 256 * 81 + 256, 256 * 256 * 81 + 256
    decoder = 160 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 3072 + 3072
    assert count_parameters(spec) == stem + primary + w_ij + decoder
    narrow = with_arch(spec, stem_channels=16, primary_types=4, decoder_hidden=[])
    with torch.no_grad():
        scores = build_model(narrow).eval()(torch.randn(2, *spec.input_shape()[1:]))
    assert scores.shape == (2, 10) and ((scores >= 0) & (scores < 1)).all()


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match="too small"):
        CapsNet(input_size=12)
