"""Every spec builds and runs; every activation and norm swap works on every family."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from effconv.errors import UsageError
from effconv.specs import MODELS_DIR, ModelSpec, load_spec
from effconv.zoo import build_model, with_arch
from effconv.zoo.blocks import ACTIVATIONS, NORMS

ALL_SPECS = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))

# A small CIFAR model per family (for the swap tests): zoo spec, arch overrides, input side.
SMALL = {
    "alexnet": ("alexnet_cifar", {}, 32),
    "vgg": ("vgg19_3x3", {"config": "11_3x3", "fc_width": 64}, 32),
    "inception": ("inception_v1_cifar", {"width": 0.25}, 16),
    "resnet": ("resnet20", {}, 32),
    "resnet_b": ("resnet20", {"shortcut": "B"}, 32),
    "mobilenet": ("mobilenet_v1_cifar", {"alpha": 0.25}, 32),
    "xception": ("xception_cifar", {"config": "cifar_small"}, 32),
}


def small(family: str, **arch) -> ModelSpec:
    name, overrides, side = SMALL[family]
    return replace(with_arch(load_spec(name), **overrides, **arch), input_size=side)


# Activation arguments (elu alpha, swish beta) are checked against closed forms in test_blocks.py.
ACT_CASES = [(name, {}) for name in ACTIVATIONS] + [("elu", {"alpha": 0.5})]
SWAP_FAMILIES = [f for f in SMALL if f != "resnet_b"]  # option B is covered by the CReLU test


def run(spec, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    model = build_model(spec)
    model.train()  # batchnorm in training mode works at batch 2 and exercises the train path
    with torch.no_grad():
        return model(torch.randn(spec.input_shape(batch)))


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_spec_runs(name):
    spec = load_spec(name)
    y = run(spec)
    assert y.shape == (2, spec.num_classes)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("family", SWAP_FAMILIES)
@pytest.mark.parametrize("act, act_args", ACT_CASES, ids=lambda v: str(v) if v else "")
def test_activation_swap(family, act, act_args):
    spec = small(family, activation=act, act_args=act_args)
    y = run(spec)
    assert y.shape == (2, spec.num_classes) and torch.isfinite(y).all()


@pytest.mark.parametrize("family", SWAP_FAMILIES)
@pytest.mark.parametrize("norm", list(NORMS))
def test_norm_swap(family, norm):
    spec = small(family, norm=norm)
    model = build_model(spec)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    has_lrn = any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    assert (has_bn, has_lrn) == (norm == "batchnorm", norm == "lrn")
    assert run(spec).shape == (2, spec.num_classes)


def seen_widths(model: nn.Module, x: torch.Tensor) -> list[tuple[str, int]]:
    """Input channels (features) that every conv and FC layer receives, in call order."""
    seen: list[tuple[str, int]] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, inp, n=n: seen.append((n, inp[0].shape[1])))
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("family", list(SMALL))
def test_crelu_keeps_declared_widths(family):
    """With CReLU every layer sees exactly the channels it sees with ReLU (the declared widths),
    while the convs that feed a CReLU compute half of them."""
    spec = small(family, activation="relu")
    relu = build_model(spec).eval()
    crelu = build_model(small(family, activation="crelu")).eval()
    x = torch.randn(spec.input_shape(2))
    assert seen_widths(crelu, x) == seen_widths(relu, x)
    assert crelu(x).shape == relu(x).shape == (2, 10)
    halved = [
        (a.out_channels, b.out_channels)
        for a, b in zip(relu.modules(), crelu.modules())
        if isinstance(a, nn.Conv2d) and a.out_channels != b.out_channels
    ]
    assert halved and all(c == r // 2 for r, c in halved)


def test_vgg_crelu_first_conv():
    model = build_model(load_spec("vgg19_3x3_crelu"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert (convs[0].out_channels, convs[1].in_channels, convs[1].out_channels) == (32, 64, 32)


def test_mobilenet_resolution_multiplier():
    spec = with_arch(load_spec("mobilenet_v1_cifar"), alpha=0.5, rho=0.75)
    with pytest.raises(UsageError, match="round"):
        build_model(spec)  # 32 * 0.75 = 24 != 32
    ok = replace(spec, input_size=24)
    assert run(ok).shape == (2, 10)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(UsageError, match="too small"):
        build_model(replace(load_spec("alexnet_224"), input_size=32))
