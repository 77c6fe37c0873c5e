"""Blocks against closed forms: Swish, ELU, CReLU, AlexNet's LRN formula, the residual fold."""

from __future__ import annotations

import math

import pytest
import torch

from effconv.errors import UsageError
from effconv.zoo import ARCHS, register_arch
from effconv.zoo.blocks import (
    ACTIVATIONS, NORMS, Fold, PadShortcut, Style, conv_norm_act, get_activation, get_norm,
)

X = torch.tensor([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0])


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_swish_closed_form(beta):
    y = Style("swish", {"beta": beta}).activation()(X)
    expected = [v * sigmoid(beta * v) for v in X.tolist()]
    assert y.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_swish_trainable_beta_learns():
    act = Style("swish_trainable", {"beta": 1.5}).activation()
    params = list(act.parameters())
    assert len(params) == 1 and params[0].item() == 1.5
    act(X).sum().backward()
    # d/dbeta sum x*sigmoid(beta x) = sum x^2 s (1 - s), s = sigmoid(beta x)
    grad = sum(v * v * sigmoid(1.5 * v) * (1 - sigmoid(1.5 * v)) for v in X.tolist())
    assert params[0].grad.item() == pytest.approx(grad, rel=1e-5)
    assert list(Style("swish").activation().parameters()) == []  # constant beta: not a parameter


def test_elu_alpha():
    y = Style("elu", {"alpha": 0.5}).activation()(X)
    expected = [v if v > 0 else 0.5 * (math.exp(v) - 1) for v in X.tolist()]
    assert y.tolist() == pytest.approx(expected, rel=1e-6)


def test_crelu_and_fold():
    x = torch.randn(2, 3, 4, 4)
    y = Style("crelu").activation()(x)
    assert y.shape == (2, 6, 4, 4)
    assert torch.equal(y[:, :3], x.clamp(min=0)) and torch.equal(y[:, 3:], (-x).clamp(min=0))
    assert torch.allclose(Fold(2)(y), x)  # relu(s) - relu(-s) == s


def test_pad_shortcut_subsamples_and_pads():
    x = torch.randn(1, 4, 6, 6)
    y = PadShortcut(1, 2, 4, 8)(x)
    assert y.shape == (1, 8, 3, 3)
    assert torch.equal(y[:, :4], x[:, :, ::2, ::2]) and not y[:, 4:].any()


def test_lrn_matches_alexnet_formula():
    torch.manual_seed(0)
    a = torch.randn(1, 7, 2, 2) * 60  # large values, so alpha * sum a^2 matters
    b = get_norm("lrn").make(7)(a)
    n, alpha, beta, k = 5, 1e-4, 0.75, 2.0
    expected = torch.empty_like(a)
    for i in range(7):
        lo, hi = max(0, i - n // 2), min(6, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(dim=1)
        expected[:, i] = a[:, i] / (k + alpha * s) ** beta
    assert torch.allclose(b, expected, rtol=1e-5)


@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_conv_norm_act_declared_width(act, norm):
    block = conv_norm_act(Style(act, {}, norm), 4, 8, 3)
    conv = block[0]
    assert conv.out_channels == 8 // get_activation(act).widen
    assert (conv.bias is None) == get_norm(norm).shifts
    assert block(torch.randn(2, 4, 5, 5)).shape == (2, 8, 5, 5)


def test_unknown_names_list_allowed():
    with pytest.raises(UsageError, match="allowed: .*relu6"):
        get_activation("tanh")
    with pytest.raises(UsageError, match="allowed: .*lrn"):
        get_norm("layernorm")
    with pytest.raises(UsageError, match="divisible"):
        conv_norm_act(Style("crelu"), 4, 7, 3)


def test_register_refuses_duplicates():
    assert {"alexnet", "vgg", "inception", "resnet", "mobilenet", "xception"} <= set(ARCHS)
    with pytest.raises(ValueError, match="already registered"):
        register_arch("vgg")(lambda **kw: None)
