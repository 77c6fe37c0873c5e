"""MobileNet v1: a 3x3 stem conv and 13 depthwise separable blocks, global average pool, FC.

Convs have no bias (each is followed by batchnorm); the FC has one. Width multiplier `alpha`
scales every channel count (rounded to an integer); resolution multiplier `rho` scales the input
side: the spec's input_size must equal round(base * rho), base 224 (`imagenet`) or 32 (`cifar`).
`cifar` runs the stem at stride 1, so 32x32 inputs end at 2x2 before the pool.
"""

from __future__ import annotations

from types import MappingProxyType

from torch import nn

from effconv.errors import UsageError
from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import Style, conv_norm_act, depthwise_separable, network, pooled_head

STEM = 32  # stem conv output channels (at alpha 1)
# the 13 depthwise separable blocks: (pointwise output channels, depthwise stride)
BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
# name: (stem stride, base input side in pixels)
CONFIGS = {"imagenet": (2, 224), "cifar": (1, 32)}


def _scale(c: int, alpha: float) -> int:
    return max(1, round(c * alpha))


@register_arch("mobilenet", choices={"config": CONFIGS})
def mobilenet_v1(
    *, num_classes: int, in_channels: int = 3, input_size: int = 224, config: str = "imagenet",
    alpha: float = 1.0, rho: float = 1.0, activation: str = "relu", act_args: dict = MappingProxyType({}),
    norm: str = "batchnorm", dropout: float = 0.0,
) -> nn.Module:
    stem_stride, base = CONFIGS[config]
    if alpha <= 0 or rho <= 0:
        raise UsageError(f"mobilenet: alpha and rho must be positive, got {alpha}, {rho}")
    if input_size != round(base * rho):
        raise UsageError(f"mobilenet: input_size {input_size} != round({base} * rho {rho}) = {round(base * rho)}")
    style = Style(activation, act_args, norm)
    cin = _scale(STEM, alpha)
    layers: list[nn.Module] = [conv_norm_act(style, in_channels, cin, 3, stem_stride)]
    for cout, stride in BLOCKS:
        layers.append(depthwise_separable(style, cin, _scale(cout, alpha), stride))
        cin = _scale(cout, alpha)
    return network(layers, pooled_head(cin, num_classes, dropout))
