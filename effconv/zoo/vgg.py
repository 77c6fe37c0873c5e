"""VGG: stacks of same-padded convs separated by 2x2 max pools, then three FC layers.

Configurations are named `<depth>_<k>x<k>` (depth counts conv + FC layers, as the VGG paper does;
k is the kernel of every conv) for depths 11, 13, 16, 19 and k in 3, 5, 7, plus `14_mixed`.
`kernel_size` (if not 0) overrides every kernel of the chosen layout.

The three CIFAR models of the efficiency study:
- `19_3x3`: 16 convs 3x3 (64 x2, 128 x2, 256 x4, 512 x4, 512 x4) + 3 FC;
- `19_5x5`: the same layout with every kernel 5x5;
- `14_mixed`: 11 convs + 3 FC, shallower and with larger kernels early, where maps are large:
    stage 1 (32x32): 64 7x7, 64 5x5      stage 2 (16x16): 128 5x5, 128 5x5
    stage 3 (8x8):   256 3x3, 256 3x3, 256 1x1
    stage 4 (4x4):   512 3x3, 512 3x3    stage 5 (2x2):   512 3x3, 512 3x3
The classifier is FC `fc_width` -> FC `fc_width` -> FC classes, with dropout before each
hidden FC; its input is the last 512 maps flattened (1x1 for 32x32 inputs, 7x7 for 224x224).
The FC layers have no normalization.
"""

from __future__ import annotations

from types import MappingProxyType

from torch import nn

from effconv.zoo.registry import register_arch
from effconv.zoo.blocks import Style, check_feature_size, classifier, conv_norm_act, linear_act, named, network

# Channel layouts; "M" is a 2x2 max pool (stride 2).
LAYOUTS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}
# config name -> layers, each (out_channels, kernel) or "M"
CONFIGS: dict[str, tuple] = {
    f"{depth}_{k}x{k}": tuple(v if v == "M" else (v, k) for v in layout)
    for depth, layout in LAYOUTS.items()
    for k in (3, 5, 7)
}
CONFIGS["14_mixed"] = (
    (64, 7), (64, 5), "M", (128, 5), (128, 5), "M", (256, 3), (256, 3), (256, 1), "M",
    (512, 3), (512, 3), "M", (512, 3), (512, 3), "M",
)


@register_arch("vgg", choices={"config": CONFIGS})
def vgg(
    *, num_classes: int, in_channels: int = 3, input_size: int = 32, config: str = "19_3x3",
    kernel_size: int = 0, activation: str = "relu", act_args: dict = MappingProxyType({}),
    norm: str = "batchnorm", dropout: float = 0.0, fc_width: int = 512,
) -> nn.Module:
    style = Style(activation, act_args, norm)
    layers: list[nn.Module] = []
    cin, size = in_channels, input_size
    for item in CONFIGS[config]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            size //= 2
            continue
        cout, k = item
        layers.append(conv_norm_act(style, cin, cout, kernel_size or k))
        cin = cout
    check_feature_size(size, input_size, "vgg")
    head = named(
        ("flatten", nn.Flatten()),
        ("fc1", linear_act(style, cin * size * size, fc_width, dropout)),
        ("fc2", linear_act(style, fc_width, fc_width, dropout)),
        ("fc3", classifier(fc_width, num_classes)),
    )
    return network(layers, head)
