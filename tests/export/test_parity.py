"""Parity arithmetic against hand-derived numbers; the ONNX Runtime runner on a fixed batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from effconv.export.parity import ParityError, ParityResult, compare, random_inputs, raise_if_failed, tolerances


def test_compare_hand_derived():
    ref = np.array([[10.0, -2.0, 0.0], [1.0, 4.0, -0.5]])
    out = np.array([[10.0, -2.0, 0.05], [1.0, 4.0, -0.5]])  # one logit off by 0.05, top-1 unchanged
    s = compare("x", ref, out, rtol=1e-3, atol=0.0)
    assert s.images == 2
    assert math.isclose(s.max_abs_err, 0.05)
    assert math.isclose(s.max_rel_err, 0.05 / 10.0)  # the image's largest |logit| is 10
    assert s.outside_tolerance == 1  # 0.05 > 1e-3 * 10
    assert s.top1_agreement == 1.0
    assert compare("x", ref, out, rtol=5e-3, atol=0.0).outside_tolerance == 0  # 0.05 <= 5e-3 * 10


def test_compare_counts_top1_flips():
    ref = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [5.0, 4.0]])
    out = np.array([[2.5, 2.0], [3.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    assert compare("x", ref, out, 1e-3, 1e-4).top1_agreement == 0.5


def test_zero_reference_with_error_is_infinite_relative():
    s = compare("x", np.zeros((1, 3)), np.array([[0.0, 1e-3, 0.0]]), 1e-3, 1e-4)
    assert s.max_rel_err == math.inf and s.outside_tolerance == 1


def test_failure_raises_with_numbers():
    bad = compare("random", np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 1e-3, 1e-4)
    result = ParityResult("rt", "fp32", 1e-3, 1e-4, (bad,))
    assert not result.passed
    with pytest.raises(ParityError) as info:
        raise_if_failed(result, "m.onnx")
    assert info.value.exit_code == 1 and info.value.result is result
    assert "top-1 agreement 0.00%" in str(info.value)


def test_tolerance_defaults_and_overrides():
    assert tolerances("fp32") == (1e-3, 1e-4)
    assert tolerances("fp16", rtol=0.5) == (0.5, 1e-4)


def test_random_inputs_are_seeded_standard_normal():
    a, b = random_inputs(64, (3, 8, 8), seed=1), random_inputs(64, (3, 8, 8), seed=1)
    assert a.dtype == np.float32 and a.shape == (64, 3, 8, 8) and np.array_equal(a, b)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
