"""A zoo model's profile explains, to the last parameter, why its count differs from torch's."""

from __future__ import annotations

import re

import pytest

from effconv.profile import profile_model

MODELS = ("resnet20", "mobilenet_v1_cifar", "vgg19_3x3_lrn", "alexnet_cifar", "capsnet_cifar")


def _numbers(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]


@pytest.mark.parametrize("name", MODELS)
def test_parameter_difference_is_explained(name):
    from effconv.specs import load_spec
    from effconv.zoo import count_parameters

    prof = profile_model(name)
    note = next(n for n in prof.notes if n.startswith("torch counts"))
    t = prof.totals
    torch_count, onnx_count = _numbers(note)[:2]
    assert torch_count == count_parameters(load_spec(name))  # the count `effconv models` prints
    assert onnx_count == t.weights + t.biases + t.norm_params + t.other_params
    assert "not explained" not in note, note


def test_resnet20_closed_form():
    """ResNet-20: 19 BatchNorms over 688 channels (16 + 6x2x16 + 6x2x32 + 6x2x64, minus none):
    1,376 scale/shift values go, 688 zero biases come, of which the file stores one per distinct
    width (16 + 32 + 64 = 112), so 576 are shared: 269,722 = 268,458 + 1,376 - 688 + 576 - 0."""
    note = next(n for n in profile_model("resnet20").notes if n.startswith("torch counts"))
    assert "269,722" in note and "268,458" in note and "1,376" in note and "688 biases" in note
    assert "576 are equal tensors" in note
    assert 269_722 == 268_458 + 1_376 - 688 + 576
