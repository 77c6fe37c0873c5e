"""An Xception-style network for CIFAR: separable convs (depthwise 3x3 then pointwise 1x1, no
activation between them) in residual blocks.

`cifar`: stem conv 3x3 32, conv 3x3 64 (32x32); entry flow: three blocks (128, 256, 512 channels),
each two separable convs and a 3x3/2 max pool, with a 1x1/2 conv + norm projection shortcut
(32 -> 16 -> 8 -> 4); middle flow: 4 blocks of three separable convs at 512 channels with identity
shortcuts; exit: separable conv 1024, global average pool, FC. Blocks use the post-activation form
(the activation follows the residual sum) instead of the original's pre-activation.
"""

from __future__ import annotations

from types import MappingProxyType

from torch import nn

from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import Fold, Residual, Style, conv_norm_act, named, network, pooled_head, separable_conv

# name: stem widths, entry block widths, (middle width, middle blocks), exit widths
CONFIGS = {
    "cifar": {"stem": (32, 64), "entry": (128, 256, 512), "middle": (512, 4), "exit": (1024,)},
    "cifar_small": {"stem": (16, 32), "entry": (64, 128, 256), "middle": (256, 2), "exit": (512,)},
}


def entry_block(style: Style, cin: int, cout: int) -> Residual:
    branch = named(
        ("sep1", separable_conv(style, cin, cout)),
        ("sep2", separable_conv(style, cout, style.halve(cout), act=False)),
        ("pool", nn.MaxPool2d(3, 2, 1)),
    )
    skip = conv_norm_act(style, cin, style.halve(cout), 1, 2, padding=0, act=False)
    return Residual(branch, skip, style.activation())


def middle_block(style: Style, c: int) -> Residual:
    branch = named(
        ("sep1", separable_conv(style, c, c)),
        ("sep2", separable_conv(style, c, c)),
        ("sep3", separable_conv(style, c, style.halve(c), act=False)),
    )
    return Residual(branch, Fold(style.widen), style.activation())


@register_arch("xception", choices={"config": CONFIGS})
def xception(
    *, num_classes: int, in_channels: int = 3, input_size: int = 32, config: str = "cifar",
    activation: str = "relu", act_args: dict = MappingProxyType({}), norm: str = "batchnorm",
    dropout: float = 0.0,
) -> nn.Module:
    style, cfg = Style(activation, act_args, norm), CONFIGS[config]
    layers: list[nn.Module] = []
    cin = in_channels
    for cout in cfg["stem"]:
        layers.append(conv_norm_act(style, cin, cout, 3))
        cin = cout
    for cout in cfg["entry"]:
        layers.append(entry_block(style, cin, cout))
        cin = cout
    width, blocks = cfg["middle"]
    layers += [middle_block(style, width) for _ in range(blocks)]
    for cout in cfg["exit"]:
        layers.append(separable_conv(style, cin, cout))
        cin = cout
    return network(layers, pooled_head(cin, num_classes, dropout))
