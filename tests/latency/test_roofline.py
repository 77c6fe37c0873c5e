"""Roofline classification against hand-computed cases; device profiles load and validate."""

from __future__ import annotations

import tomllib

import pytest

from effconv.errors import InvalidInputError
from effconv.latency.devices import Calibration, calibration_toml, write_calibration
from effconv.latency.roofline import (DEVICES_DIR, list_device_names, load_device_profile,
                                      parse_device_profile, roofline)

# A made-up device: 10 TFLOP/s fp32, 100 GB/s -> ridge at 100 FLOP/byte.
TOY = {"name": "toy", "description": "toy", "source": "hand-made for tests", "figures": "dense",
       "memory_bandwidth_gbs": 100, "peak_tflops": {"fp32": 10}}


@pytest.mark.parametrize("macs, nbytes, ms, bound, pct", [
    # intensity 2*1e6/1e6 = 2 FLOP/B < 100 -> memory; attainable 2*100e9 = 200 GFLOP/s;
    # achieved 2e6 FLOP / 0.1 ms = 20 GFLOP/s -> 10 %
    (1_000_000, 1_000_000, 0.1, "memory", 10.0),
    # intensity 2*1e9/1e6 = 2000 -> compute; attainable 10 TFLOP/s; achieved 2e9/1 ms = 2 TFLOP/s -> 20 %
    (1_000_000_000, 1_000_000, 1.0, "compute", 20.0),
    # no arithmetic: 1e6 bytes in 0.02 ms = 50 GB/s of 100 GB/s -> 50 %
    (0, 1_000_000, 0.02, "memory", 50.0),
])
def test_roofline_hand_cases(macs, nbytes, ms, bound, pct, tmp_path):
    device = parse_device_profile(TOY, tmp_path / "toy.toml")
    point = roofline(macs, nbytes, ms, device, "fp32")
    assert point.ridge == pytest.approx(100.0)
    assert point.bound == bound
    assert point.pct_of_roofline == pytest.approx(pct)


EXPECTED = {"h100-sxm", "h200", "a100-sxm-80gb", "l4", "t4", "jetson-orin-nano", "jetson-agx-orin"}


def test_every_vendor_profile_loads_with_a_source():
    assert EXPECTED <= set(list_device_names())
    for name in EXPECTED:
        p = load_device_profile(name)
        assert p.source.strip() and "dense" in p.figures
        assert p.peak("fp32") > 0 and p.memory_bandwidth > 0


def test_h100_figures_are_dense():
    p = load_device_profile("h100-sxm")
    assert p.peak("fp16") == pytest.approx(989.4e12)  # 1979 with sparsity, halved
    assert p.memory_bandwidth == pytest.approx(3.35e12)


@pytest.mark.parametrize("change, message", [
    ({"clock_ghz": 1.0}, "unknown key"),
    ({"source": "  "}, "source"),
    ({"peak_tflops": {"fp64": 1.0}}, "unknown precision"),
    ({"memory_bandwidth_gbs": -1}, "positive"),
])
def test_invalid_profiles_are_rejected(change, message, tmp_path):
    with pytest.raises(InvalidInputError, match=message):
        parse_device_profile({**TOY, **change}, tmp_path / "bad.toml")


def test_missing_key_rejected(tmp_path):
    data = {k: v for k, v in TOY.items() if k != "source"}
    with pytest.raises(InvalidInputError, match="missing"):
        parse_device_profile(data, tmp_path / "bad.toml")


def test_calibration_toml_round_trips(tmp_path):
    cal = Calibration(flops_fp32=123.4e9, bandwidth=12.5e9, matmul_n=64, copy_mib=1, repeats=1, device='CPU "x"')
    path = tmp_path / "cpu.toml"
    profile = write_calibration(cal, path, "cpu")
    assert profile.peak("fp32") == pytest.approx(123.4e9, rel=1e-5)
    assert load_device_profile(path).memory_bandwidth == pytest.approx(12.5e9, rel=1e-5)
    assert tomllib.loads(calibration_toml(cal, "cpu"))["measured"] is True
    assert DEVICES_DIR.is_dir()
