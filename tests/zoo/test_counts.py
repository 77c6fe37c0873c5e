"""Parameter counts pinned against hand arithmetic.

The oracles below are small formulas written from the published layer tables (retyped here, not
imported from effconv): conv k x k from cin to cout has k*k*cin*cout weights (+cout bias when no
batchnorm follows); batchnorm has 2 trainable parameters per channel (running statistics are
buffers); an FC layer has in*out weights + out biases; CReLU halves the channels a layer computes.
Published totals (AlexNet 62,378,344 single-tower; VGG-16 138,357,544; ResNet-18 11,689,512;
MobileNet v1 4.2M weights) pin the formulas themselves.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effconv.specs import MODELS_DIR, load_spec
from effconv.zoo import build_model, count_parameters


def conv(k: int, cin: int, cout: int, *, bn: bool = True) -> int:
    return k * k * cin * cout + (2 * cout if bn else cout)


def fc(fin: int, fout: int) -> int:
    return fin * fout + fout


# --- AlexNet: convs with bias, LRN has no parameters -----------------------------------------------
def alexnet(k1: int, side: int, hidden: int, classes: int) -> int:
    convs = conv(k1, 3, 96, bn=False) + conv(5, 96, 256, bn=False) + conv(3, 256, 384, bn=False)
    convs += conv(3, 384, 384, bn=False) + conv(3, 384, 256, bn=False)
    return convs + fc(256 * side * side, hidden) + fc(hidden, hidden) + fc(hidden, classes)


# --- VGG -----------------------------------------------------------------------------------------
VGG16 = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
VGG19 = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
VGG14_MIXED = [(64, 7), (64, 5), (128, 5), (128, 5), (256, 3), (256, 3), (256, 1),
               (512, 3), (512, 3), (512, 3), (512, 3)]


def vgg(layers, *, side=1, fc_width=512, classes=10, widen=1, bn=True) -> int:
    total, cin = 0, 3
    for c, k in layers:
        total += conv(k, cin, c // widen, bn=bn)
        cin = c
    head = fc(cin * side * side, fc_width // widen) + fc(fc_width, fc_width // widen) + fc(fc_width, classes)
    return total + head


# --- Inception v1: every conv is conv + batchnorm (no bias) --------------------------------------
# (input channels, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) for 3a..5b
INCEPTION = [
    (192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128),
]


def inception(stem: int, classes: int) -> int:
    mods = sum(
        conv(1, i, a) + conv(1, i, r3) + conv(3, r3, c3) + conv(1, i, r5) + conv(5, r5, c5) + conv(1, i, p)
        for i, a, r3, c3, r5, c5, p in INCEPTION
    )
    return stem + mods + fc(1024, classes)


# --- ResNet: two 3x3 conv+bn per block; option A shortcuts are free, option B 1x1 conv+bn ---------
def resnet(widths, blocks, stem, classes, projection) -> int:
    total, cin = stem, widths[0]
    for c, n in zip(widths, blocks):
        for _ in range(n):
            total += conv(3, cin, c) + conv(3, c, c) + (conv(1, cin, c) if projection and cin != c else 0)
            cin = c
    return total + fc(cin, classes)


# --- MobileNet v1: 3x3 stem, then per block depthwise 3x3 + bn and pointwise 1x1 + bn -------------
MOBILENET = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 5 + [
    (512, 1024), (1024, 1024)]


def mobilenet(classes: int) -> int:
    return conv(3, 3, 32) + sum(9 * i + 2 * i + conv(1, i, o) for i, o in MOBILENET) + fc(1024, classes)


# --- Xception (CIFAR): separable conv = depthwise 3x3 (no bias) + pointwise 1x1 + bn -------------
def sep(cin: int, cout: int) -> int:
    return 9 * cin + conv(1, cin, cout)


def xception(classes: int) -> int:
    entry = sum(sep(i, c) + sep(c, c) + conv(1, i, c) for i, c in ((64, 128), (128, 256), (256, 512)))
    middle = 4 * 3 * sep(512, 512)
    return conv(3, 3, 32) + conv(3, 32, 64) + entry + middle + sep(512, 1024) + fc(1024, classes)


EXPECTED = {
    "alexnet_224": alexnet(11, 6, 4096, 1000),
    "alexnet_cifar": alexnet(5, 3, 1024, 10),
    "alexnet_cifar_adam": alexnet(5, 3, 1024, 10),
    "vgg16_224": vgg([(c, 3) for c in VGG16], side=7, fc_width=4096, classes=1000, bn=False),
    "vgg19_3x3": vgg([(c, 3) for c in VGG19]),
    "vgg19_5x5": vgg([(c, 5) for c in VGG19]),
    "vgg14_mixed": vgg(VGG14_MIXED),
    "vgg19_3x3_swish": vgg([(c, 3) for c in VGG19]),  # constant beta: no parameters
    "vgg19_3x3_elu": vgg([(c, 3) for c in VGG19]),
    "vgg19_3x3_crelu": vgg([(c, 3) for c in VGG19], widen=2),
    "vgg19_3x3_nobn": vgg([(c, 3) for c in VGG19], bn=False),
    "vgg19_3x3_swish_nobn": vgg([(c, 3) for c in VGG19], bn=False),
    "vgg19_3x3_elu_nobn": vgg([(c, 3) for c in VGG19], bn=False),
    "vgg19_3x3_crelu_nobn": vgg([(c, 3) for c in VGG19], widen=2, bn=False),
    "vgg19_3x3_lrn": vgg([(c, 3) for c in VGG19], bn=False),  # LRN has no parameters
    "inception_v1_224": inception(conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192), 1000),
    "inception_v1_cifar": inception(conv(3, 3, 192), 10),
    "resnet20": resnet((16, 32, 64), (3, 3, 3), conv(3, 3, 16), 10, projection=False),
    "resnet56": resnet((16, 32, 64), (9, 9, 9), conv(3, 3, 16), 10, projection=False),
    "resnet18": resnet((64, 128, 256, 512), (2, 2, 2, 2), conv(7, 3, 64), 1000, projection=True),
    "mobilenet_v1": mobilenet(1000),
    "mobilenet_v1_cifar": mobilenet(10),
    "xception_cifar": xception(10),
}


def test_formulas_match_published_totals():
    assert EXPECTED["alexnet_224"] == 62_378_344
    assert EXPECTED["vgg16_224"] == 138_357_544
    assert EXPECTED["resnet18"] == 11_689_512
    assert EXPECTED["resnet20"] == 269_722  # "0.27M" in the ResNet paper's CIFAR table
    assert EXPECTED["resnet56"] == 853_018  # "0.85M"
    assert EXPECTED["mobilenet_v1"] == 4_209_088 + 2 * 10_944 + 1000  # weights + bn + FC bias


def zoo_names() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml") if not p.stem.startswith("capsnet"))


@pytest.mark.parametrize("name", zoo_names())
def test_every_spec_count_is_pinned(name):
    assert name in EXPECTED, f"pin the parameter count of {name} in EXPECTED"
    assert count_parameters(load_spec(name)) == EXPECTED[name]


def test_meta_count_equals_real_build():
    spec = load_spec("resnet20")
    assert sum(p.numel() for p in build_model(spec).parameters()) == count_parameters(spec)


def weights_by_kind(model: nn.Module) -> dict[str, int]:
    kinds = {"pointwise": 0, "depthwise": 0, "stem": 0, "fc": 0}
    for m in model.modules():
        if isinstance(m, nn.Linear):
            kinds["fc"] += m.weight.numel()
        elif isinstance(m, nn.Conv2d) and m.groups > 1:
            kinds["depthwise"] += m.weight.numel()
        elif isinstance(m, nn.Conv2d):
            kinds["pointwise" if m.kernel_size == (1, 1) else "stem"] += m.weight.numel()
    return kinds


def test_mobilenet_weights_by_layer_type():
    with torch.device("meta"):
        model = build_model(load_spec("mobilenet_v1"))
    pointwise = (32 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 5 * 512 * 512
                 + 512 * 1024 + 1024 * 1024)
    depthwise = 3 * 3 * (32 + 64 + 128 + 128 + 256 + 256 + 5 * 512 + 512 + 1024)
    expected = {"pointwise": pointwise, "depthwise": depthwise, "stem": 3 * 3 * 3 * 32, "fc": 1024 * 1000}
    assert expected == {"pointwise": 3_139_584, "depthwise": 44_640, "stem": 864, "fc": 1_024_000}
    assert weights_by_kind(model) == expected
    assert sum(expected.values()) == 4_209_088
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None for m in convs)  # convs feed batchnorm
    assert [m for m in model.modules() if isinstance(m, nn.Linear)][0].bias is not None
    assert len(convs) == 1 + 2 * 13


def test_alexnet_224_layer_shapes():
    with torch.device("meta"):
        model = build_model(load_spec("alexnet_224"))
        maps = []
        hooks = [m.register_forward_hook(lambda mod, i, o: maps.append(tuple(o.shape[1:])))
                 for m in model.modules() if isinstance(m, nn.Conv2d)]
        model(torch.empty(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    convs = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Linear)]
    assert convs == [(96, 3, 11, 11), (256, 96, 5, 5), (384, 256, 3, 3), (384, 384, 3, 3), (256, 384, 3, 3)]
    assert fcs == [(4096, 256 * 6 * 6), (4096, 4096), (1000, 4096)]
    assert maps == [(96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
