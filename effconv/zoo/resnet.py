"""ResNet with basic blocks (two 3x3 conv-norm-act, the second without activation, added to the
shortcut, then the activation).

- `cifar20`, `cifar32`, `cifar44`, `cifar56`, `cifar110`: the CIFAR networks of the ResNet paper,
  depth 6n+2: conv 3x3 16, three stages of n blocks with 16/32/64 channels (32x32, 16x16, 8x8),
  global average pool, FC. The default shortcut is option A (as the paper uses for CIFAR):
  identity, and where the shape changes, subsample by 2 and zero-pad the new channels
  (parameter-free).
- `imagenet18`, `imagenet34`: conv 7x7/2 64, max pool 3/2, four stages 64/128/256/512 with
  2-2-2-2 or 3-4-6-3 blocks, global average pool, FC; use option B (a 1x1 conv + norm projection
  where the shape changes, identity elsewhere).
Downsampling is by stride 2 in the first conv of a stage's first block.
"""

from __future__ import annotations

from types import MappingProxyType

from torch import nn

from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import Fold, PadShortcut, Residual, Style, conv_norm_act, named, network, pooled_head

# name: (stem, stage widths, blocks per stage)
CONFIGS = {
    **{f"cifar{6 * n + 2}": ("cifar", (16, 32, 64), (n, n, n)) for n in (3, 5, 7, 9, 18)},
    "imagenet18": ("imagenet", (64, 128, 256, 512), (2, 2, 2, 2)),
    "imagenet34": ("imagenet", (64, 128, 256, 512), (3, 4, 6, 3)),
}
SHORTCUTS = ("A", "B")


def _stem(style: Style, kind: str, cin: int, cout: int) -> nn.Sequential:
    if kind == "cifar":
        return conv_norm_act(style, cin, cout, 3)
    return named(("conv", conv_norm_act(style, cin, cout, 7, 2)), ("pool", nn.MaxPool2d(3, 2, 1)))


def basic_block(style: Style, cin: int, cout: int, stride: int, shortcut: str) -> Residual:
    branch = named(
        ("conv1", conv_norm_act(style, cin, cout, 3, stride)),
        ("conv2", conv_norm_act(style, cout, style.halve(cout), 3, act=False)),
    )
    if stride == 1 and cin == cout:
        skip: nn.Module = Fold(style.widen)
    elif shortcut == "A":
        skip = PadShortcut(style.widen, stride, cin, cout)
    else:
        skip = conv_norm_act(style, cin, style.halve(cout), 1, stride, act=False)
    return Residual(branch, skip, style.activation())


@register_arch("resnet", choices={"config": CONFIGS, "shortcut": SHORTCUTS})
def resnet(
    *, num_classes: int, in_channels: int = 3, input_size: int = 32, config: str = "cifar20",
    shortcut: str = "A", activation: str = "relu", act_args: dict = MappingProxyType({}),
    norm: str = "batchnorm",
) -> nn.Module:
    style = Style(activation, act_args, norm)
    stem, widths, counts = CONFIGS[config]
    layers: list[nn.Module] = [_stem(style, stem, in_channels, widths[0])]
    cin = widths[0]
    for stage, (cout, n) in enumerate(zip(widths, counts)):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(basic_block(style, cin, cout, stride, shortcut))
            cin = cout
    return network(layers, pooled_head(cin, num_classes))
