"""Inception v1 (GoogLeNet) with 1x1 reductions before the 3x3 and 5x5 convs.

Module table (the original 3a..5b): 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection; the
output is the concatenation 1x1 + 3x3 + 5x5 + pool proj (256, 480, 512, 512, 512, 528, 832, 832,
1024 channels). The 5x5 branch is a true 5x5 conv. Every conv is conv-norm-act (batchnorm by
default, in place of the original's two LRNs in the stem); the auxiliary classifiers are left out.

`224` stem: conv 7x7/2 64, max pool 3/2, conv 1x1 64, conv 3x3 192, max pool 3/2 (224 -> 28).
`cifar` stem: one conv 3x3 192 at stride 1 (32 stays 32). Max pools 3/2 (padding 1) sit between
stages 3 and 4 and 4 and 5; then global average pool, dropout 0.4, FC.
"""

from __future__ import annotations

from types import MappingProxyType

import torch
from torch import nn

from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import Style, conv_norm_act, named, network, pooled_head

# name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj; "M" = max pool 3x3/2
MODULES = (
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), "M",
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64), ("4e", 256, 160, 320, 32, 128, 128), "M",
    ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128),
)
# stem layers: (out_channels, kernel, stride) or "M"
STEMS = {"224": ((64, 7, 2), "M", (64, 1, 1), (192, 3, 1), "M"), "cifar": ((192, 3, 1),)}


class InceptionModule(nn.Module):
    """Four branches concatenated along channels: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5;
    3x3/1 max pool -> 1x1 projection."""

    # attribute names before the modules were named (checkpoints written then use these)
    LEGACY_NAMES = {"branch1x1": "b1", "branch3x3": "b3", "branch5x5": "b5", "branch_pool": "bp"}

    def __init__(self, style: Style, cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, cp: int) -> None:
        super().__init__()
        self.branch1x1 = conv_norm_act(style, cin, c1, 1)
        self.branch3x3 = named(("reduce", conv_norm_act(style, cin, r3, 1)), ("conv", conv_norm_act(style, r3, c3, 3)))
        self.branch5x5 = named(("reduce", conv_norm_act(style, cin, r5, 1)), ("conv", conv_norm_act(style, r5, c5, 5)))
        self.branch_pool = named(("pool", nn.MaxPool2d(3, 1, 1)), ("proj", conv_norm_act(style, cin, cp, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1x1, self.branch3x3, self.branch5x5, self.branch_pool)
        return torch.cat([b(x) for b in branches], dim=1)


def _scale(c: int, width: float) -> int:
    return max(2, 2 * round(c * width / 2))  # even, so width-doubling activations can halve it


@register_arch("inception", choices={"config": STEMS})
def inception_v1(
    *, num_classes: int, in_channels: int = 3, input_size: int = 224, config: str = "224",
    activation: str = "relu", act_args: dict = MappingProxyType({}), norm: str = "batchnorm",
    dropout: float = 0.4, width: float = 1.0,
) -> nn.Module:
    """`width` scales every channel count (1.0 = the original table)."""
    style = Style(activation, act_args, norm)
    layers: list[nn.Module] = []
    cin = in_channels
    for item in STEMS[config]:
        if item == "M":
            layers.append(nn.MaxPool2d(3, 2, 1))
            continue
        cout, k, stride = item
        layers.append(conv_norm_act(style, cin, _scale(cout, width), k, stride))
        cin = _scale(cout, width)
    for item in MODULES:
        if item == "M":
            layers.append(nn.MaxPool2d(3, 2, 1))
            continue
        chans = [_scale(c, width) for c in item[1:]]
        layers.append(InceptionModule(style, cin, *chans))
        cin = chans[0] + chans[2] + chans[4] + chans[5]
    return network(layers, pooled_head(cin, num_classes, dropout))
