"""The join of per-layer times with the static costs (effconv.latency.measure.per_type): every ONNX
node's Mult-Adds counted once whatever rows the runtime reports, and a roofline share above 100%
said out loud."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from effconv.latency.base import LatencyOptions
from effconv.latency.layerwise import LayerTime, LayerwiseResult
from effconv.latency.measure import per_type as _per_type


def _profile(costs: dict[str, tuple[str, int]]):
    layers = [SimpleNamespace(name=n, type=t, mult_adds=m) for n, (t, m) in costs.items()]
    return SimpleNamespace(layers=layers, totals=SimpleNamespace(mult_adds=sum(m for _, m in costs.values())))


class _Graph:
    """bytes_moved: 1 MB per node (enough for a roofline point)."""

    def bytes_moved(self, nodes, precision):
        return 1_000_000 * len(nodes)


def _result(layers):
    return LayerwiseResult("ort-profiler", "host times", tuple(layers), sum(lt.ms for lt in layers), 0.0, 1, ())


def test_overlapping_rows_count_each_node_once():
    """ORT's rows for a residual block: the fused Conv, then an Add+Relu group that reaches back to
    the same Conv. ResNet-20 read "Conv 3x3 169.82% of Mult-Adds" before."""
    profile = _profile({"conv1": ("Conv 3x3", 600), "conv2": ("Conv 3x3", 400), "add": ("Add", 0), "relu": ("Relu", 0)})
    layers = [LayerTime("conv1", "Conv", ("conv1",), 1.0), LayerTime("conv2", "Conv", ("conv2",), 1.0),
              LayerTime("add", "Add", ("conv2", "add", "relu"), 0.5)]
    _, rows, _ = _per_type(_result(layers), None, profile, LatencyOptions())
    by_type = {r.type: r for r in rows}
    assert by_type["Conv 3x3"].mult_adds == 1000 and by_type["Conv 3x3"].mult_adds_pct == pytest.approx(100.0)
    assert by_type["Add"].mult_adds == 0
    assert sum(r.mult_adds for r in rows) == profile.totals.mult_adds


def test_a_node_listed_only_in_a_group_is_counted_there():
    profile = _profile({"conv": ("Conv 1x1", 500), "relu": ("Relu", 0)})
    layers = [LayerTime("relu", "Relu", ("conv", "relu"), 1.0), LayerTime("other", "Relu", ("conv",), 1.0)]
    _, rows, _ = _per_type(_result(layers), None, profile, LatencyOptions())
    assert sum(r.mult_adds for r in rows) == 500


def test_above_100_percent_of_the_roofline_is_flagged():
    from effconv.latency.roofline import list_device_names

    device = list_device_names()[0]
    profile = _profile({"conv": ("Conv 3x3", 10**12)})  # 1e12 MACs in 1 ms: beyond any device
    layers = [LayerTime("conv", "Conv", ("conv",), 1.0)]
    _, rows, notes = _per_type(_result(layers), _Graph(), profile, LatencyOptions(device_profile=device))
    assert rows[0].pct_of_roofline > 100
    assert any("above 100%" in n and "Conv 3x3" in n for n in notes), notes


def test_inside_the_roofline_no_note():
    from effconv.latency.roofline import list_device_names

    profile = _profile({"conv": ("Conv 3x3", 1000)})
    layers = [LayerTime("conv", "Conv", ("conv",), 1.0)]
    _, rows, notes = _per_type(_result(layers), _Graph(), profile, LatencyOptions(device_profile=list_device_names()[0]))
    assert rows[0].pct_of_roofline < 100 and not any("above 100%" in n for n in notes)
