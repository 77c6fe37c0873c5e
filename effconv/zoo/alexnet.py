"""AlexNet: five conv layers and three fully connected ones.

`224` is the original ImageNet layout with the single-tower widths of the paper (the two GPU
halves joined: 96, 256, 384, 384, 256; no grouped convs). conv1 is 11x11 stride 4 with padding 2, so
a 224x224 input gives the paper's 55x55 maps (without padding it needs 227x227). LRN follows the
activation of conv1 and conv2; overlapping 3x3/2 max pools follow conv1, conv2 and conv5; dropout
0.5 precedes the two hidden FC layers (4096 each).

`cifar` keeps the five conv widths and the LRN/pool placement for 32x32 inputs: conv1 is 5x5 stride 1
(32 -> 32 -> pool 15 -> 15 -> pool 7 -> 7 -> pool 3), and the hidden FC layers have 1024 units.

`norm` replaces LRN where the original has it (conv1, conv2); conv3-5 have none.
"""

from __future__ import annotations

from types import MappingProxyType

from torch import nn

from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import (
    Style, check_feature_size, classifier, conv_norm_act, linear_act, named, network, out_size,
)

# conv layers: (out_channels, kernel, stride, padding, norm after it, max pool after it)
CONFIGS = {
    "224": {
        "convs": ((96, 11, 4, 2, True, True), (256, 5, 1, 2, True, True), (384, 3, 1, 1, False, False),
                  (384, 3, 1, 1, False, False), (256, 3, 1, 1, False, True)),
        "fc": (4096, 4096),
    },
    "cifar": {
        "convs": ((96, 5, 1, 2, True, True), (256, 5, 1, 2, True, True), (384, 3, 1, 1, False, False),
                  (384, 3, 1, 1, False, False), (256, 3, 1, 1, False, True)),
        "fc": (1024, 1024),
    },
}
POOL = (3, 2)  # overlapping max pool: 3x3 window, stride 2


@register_arch("alexnet", choices={"config": CONFIGS})
def alexnet(
    *, num_classes: int, in_channels: int = 3, input_size: int = 224, config: str = "224",
    activation: str = "relu", act_args: dict = MappingProxyType({}), norm: str = "lrn", dropout: float = 0.5,
) -> nn.Module:
    style, cfg = Style(activation, act_args, norm), CONFIGS[config]
    layers: list[nn.Module] = []
    cin, size = in_channels, input_size
    for cout, k, stride, pad, has_norm, pool in cfg["convs"]:
        layers.append(conv_norm_act(style, cin, cout, k, stride, padding=pad, norm=has_norm))
        size = out_size(size, k, stride, pad)
        if pool:
            layers.append(nn.MaxPool2d(*POOL))
            size = out_size(size, *POOL)
        cin = cout
    check_feature_size(size, input_size, "alexnet")
    head: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    fin = cin * size * size
    for i, width in enumerate(cfg["fc"], 1):
        head.append((f"fc{i}", linear_act(style, fin, width, dropout)))
        fin = width
    head.append((f"fc{len(cfg['fc']) + 1}", classifier(fin, num_classes)))
    return network(layers, named(*head))
