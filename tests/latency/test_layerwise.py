"""Per-layer latency: ORT node names mapped back to ONNX nodes, TensorRT fused-layer names mapped
back, isolation sub-models equal to the full model's tensors, and the MobileNet sum ratio."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from effconv.errors import UsageError
from effconv.latency import LatencyOptions
from effconv.latency.layerwise import LayerwiseContext, map_ort_nodes, map_trt_layers, measure_layers
from effconv.latency.onnxgraph import fused_groups, load_onnx_graph, submodel
from effconv.latency.api import measure_model, measure_profile_latency
from effconv.latency.report import SUM_RATIO_BOUNDS

FAST = dict(backend="ort-cpu", threads=2, warmup_ms=20, duration_s=0.1, iterations=5)


def test_fused_groups_cover_every_node_once(tiny_onnx):
    g = load_onnx_graph(tiny_onnx, 1)
    groups = fused_groups(g)
    ops = [[g.node(n).op_type for n in grp] for grp in groups]
    assert ops[:3] == [["Conv", "Relu"]] * 3  # BN folded by the exporter; ReLU fused into each conv
    covered = [n for grp in groups for n in grp]
    assert sorted(covered) == sorted(n.name for n in g.nodes)


def test_isolated_submodel_reproduces_the_tensor(tiny_onnx):
    """Oracle: the full model's intermediate tensor, read by adding it as a graph output."""
    import onnx

    g = load_onnx_graph(tiny_onnx, 1)
    grp = fused_groups(g)[1]  # the depthwise conv + relu
    sub = submodel(g, grp)
    full = onnx.load(str(tiny_onnx))
    first_out = g.node(fused_groups(g)[0][-1]).outputs[0]
    full.graph.output.extend([onnx.helper.make_empty_tensor_value_info(first_out),
                              onnx.helper.make_empty_tensor_value_info(g.node(grp[-1]).outputs[0])])
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    outs = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    got = ort.InferenceSession(sub.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {sub.graph.input[0].name: outs[1]})
    np.testing.assert_allclose(got[0], outs[2], rtol=1e-5, atol=1e-6)


def test_ort_nchwc_and_fused_names_map_to_onnx_nodes(tiny_onnx):
    g = load_onnx_graph(tiny_onnx, 1)
    conv, relu = fused_groups(g)[0]
    times = {f"{g.node(relu).outputs[0]}_nchwc": ("Conv", 1.0), conv: ("FusedConv", 2.0), "ReorderOutput": ("ReorderOutput", 0.5)}
    layers = map_ort_nodes(times, g)
    assert [(lt.name, lt.nodes) for lt in layers[:2]] == [(conv, (conv, relu)), (conv, (conv,))]
    assert layers[2].nodes == () and "inserted" in layers[2].op_type


def test_tensorrt_layer_names_map_back(tiny_onnx):
    g = load_onnx_graph(tiny_onnx, 1)
    (c1, r1), (c2, r2) = fused_groups(g)[:2]
    times = {f"{c1} + {r1}": 0.3, f"PWN({r2}), {c2}": 0.2, "Reformatting CopyNode for Input Tensor 0": 0.1}
    layers = map_trt_layers(times, g)
    assert layers[0].name == c1 and set(layers[0].nodes) == {c1, r1}
    assert layers[1].name == c2 and set(layers[1].nodes) == {c2, r2}
    assert layers[2].nodes == () and layers[2].ms == 0.1


def test_ort_profiler_refused_on_cuda_ep(tiny_onnx):
    ctx = LayerwiseContext("ort-cuda", LatencyOptions(), tiny_onnx, load_onnx_graph(tiny_onnx, 1))
    with pytest.raises(UsageError, match="host"):
        measure_layers("ort-profiler", ctx)


@pytest.mark.parametrize("method", ["ort-profiler", "isolate"])
def test_per_layer_methods_on_tiny_model(tiny_onnx, method):
    from effconv.profile import profile_onnx

    profile = profile_onnx(tiny_onnx)
    report = measure_profile_latency(profile, LatencyOptions(**FAST, per_layer=method))
    assert report.layerwise.method == method and report.layerwise.sum_ms > 0
    assert report.sum_ratio == pytest.approx(report.layerwise.sum_ms / report.median_ms)
    types = {t.type: t for t in report.by_type}
    assert {"Conv 3x3", "Conv DW 3x3", "Conv 1x1", "Fully Connected"} <= set(types)
    # Mult-Adds per type come from the static profile: each must equal the profile's own total.
    for t in profile.by_type:
        if t.mult_adds:
            assert types[t.type].mult_adds == t.mult_adds
    assert sum(t.pct for t in report.by_type) == pytest.approx(100.0)


def test_mobilenet_v1_224_ort_profiler_sum_ratio():
    """The brief's check: per-layer sum within +-25% of the median, or the gap explained."""
    report = measure_model("mobilenet_v1", LatencyOptions(backend="ort-cpu", threads=2, warmup_ms=100,
                                                          duration_s=0.5, iterations=10))
    ratio = report.sum_ratio
    assert ratio is not None and ratio > 0
    low, high = SUM_RATIO_BOUNDS
    assert low <= ratio <= high or report.gap_explanation
    shares = {t.type: t.mult_adds_pct for t in report.by_type}
    assert shares["Conv 1x1"] == pytest.approx(94.86, abs=0.01)  # the MobileNet paper's table
    assert report.layerwise.instrumented_ms > 0


def test_profiled_runs_stop_at_the_cap_so_traces_stay_bounded():
    """A long --duration-s must not grow the per-layer trace without bound (it is parsed in memory)."""
    from effconv.latency.base import LatencyOptions
    from effconv.latency.layerwise.common import MAX_PROFILED_RUNS, profiled_runs as _profiled_runs

    calls = []
    _, totals = _profiled_runs(lambda: calls.append(1), LatencyOptions(warmup_ms=0, duration_s=60.0, iterations=1))
    assert len(totals) == MAX_PROFILED_RUNS
    _, totals = _profiled_runs(lambda: None, LatencyOptions(warmup_ms=0, duration_s=60.0, iterations=MAX_PROFILED_RUNS + 50))
    assert len(totals) == MAX_PROFILED_RUNS + 50
