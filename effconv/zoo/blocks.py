"""Building blocks shared by the zoo's families, chosen by name.

Activations (`ACTIVATIONS`) and normalizations (`NORMS`) are plain dicts keyed by the names a
spec uses (`activation = "swish"`, `norm = "lrn"`); a family builder bundles its choice in a
`Style` and passes it to every block.

Width convention (CReLU): a layer is DECLARED with the number of channels the next layer sees.
CReLU = concat(relu(x), relu(-x)) doubles channels, so a conv declared with 64 outputs computes 32
and CReLU turns them into 64. Two places cannot halve their output:
- a depthwise conv (its outputs are tied to its inputs): it is followed by the activation's
  width-preserving fallback (`Activation.same_width`, ReLU for CReLU);
- a residual sum: blocks add in the PRE-activation space. A CReLU output [relu(s), relu(-s)] is
  folded back to s = first half - second half (`Fold`, exact and parameter-free), the branch's last
  conv computes declared/2 channels, the sum is taken there and CReLU doubles it again.
Conv layers have no bias when a shifting norm (batchnorm) follows them directly.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from effconv.errors import UsageError


class Swish(nn.Module):
    """x * sigmoid(beta * x); beta is a constant (default 1) or a learned scalar."""

    def __init__(self, beta: float = 1.0, trainable: bool = False) -> None:
        super().__init__()
        self.trainable = trainable
        self.beta = nn.Parameter(torch.tensor(float(beta))) if trainable else float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)


class CReLU(nn.Module):
    """concat(relu(x), relu(-x)) along channels: doubles the channel count."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((F.relu(x), F.relu(-x)), dim=1)


class Fold(nn.Module):
    """Undo a width-doubling activation for a residual sum: [relu(s), relu(-s)] -> s."""

    def __init__(self, widen: int) -> None:
        super().__init__()
        self.widen = widen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.widen == 1:
            return x
        half = x.shape[1] // 2
        return x[:, :half] - x[:, half:]


def alexnet_lrn(channels: int) -> nn.Module:
    """AlexNet's LRN: n=5, alpha=1e-4, beta=0.75, k=2 in the paper's formula
    b = a / (k + alpha * sum a^2)^beta. torch divides alpha by n, so it gets alpha * n."""
    del channels  # LRN has no parameters
    return nn.LocalResponseNorm(size=5, alpha=1e-4 * 5, beta=0.75, k=2.0)


@dataclass(frozen=True)
class Activation:
    make: Callable[..., nn.Module]
    widen: int = 1  # output channels per input channel
    same_width: str = ""  # width-preserving fallback for depthwise convs ("" = itself)


@dataclass(frozen=True)
class Norm:
    make: Callable[[int], nn.Module] | None  # channels -> module; None = no normalization
    after_act: bool = False  # LRN sits after the activation (AlexNet's order), batchnorm before
    shifts: bool = False  # has a learned shift, so a conv bias before it is redundant


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(nn.ReLU),
    "relu6": Activation(nn.ReLU6),
    "elu": Activation(nn.ELU),  # act_args: alpha
    "swish": Activation(Swish),  # act_args: beta, trainable
    "swish_trainable": Activation(partial(Swish, trainable=True)),  # act_args: beta (initial)
    "crelu": Activation(CReLU, widen=2, same_width="relu"),
}

NORMS: dict[str, Norm] = {
    "batchnorm": Norm(nn.BatchNorm2d, shifts=True),
    "lrn": Norm(alexnet_lrn, after_act=True),
    "none": Norm(None),
}


def get_activation(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise UsageError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def get_norm(name: str) -> Norm:
    if name not in NORMS:
        raise UsageError(f"unknown norm {name!r}; allowed: {', '.join(NORMS)}")
    return NORMS[name]


def check_act_args(name: str, act_args: Mapping) -> None:
    """Raise UsageError unless `act_args` are keyword arguments the activation accepts."""
    params = inspect.signature(get_activation(name).make).parameters
    for key in act_args:
        if key not in params:
            allowed = ", ".join(params) or "none"
            raise UsageError(f"activation {name!r} takes no argument {key!r}; allowed: {allowed}")


@dataclass(frozen=True)
class Style:
    """A family's choice of activation (with its arguments) and normalization."""

    act: str = "relu"
    act_args: Mapping = field(default_factory=dict)
    norm: str = "batchnorm"

    def __post_init__(self) -> None:
        get_norm(self.norm)
        check_act_args(self.act, self.act_args)

    @property
    def widen(self) -> int:
        return get_activation(self.act).widen

    def activation(self) -> nn.Module:
        return get_activation(self.act).make(**self.act_args)

    def same_width(self) -> Style:
        fallback = get_activation(self.act).same_width
        return self if not fallback else Style(fallback, {}, self.norm)

    def halve(self, declared: int) -> int:
        """Channels a layer computes so that this activation yields `declared` channels."""
        if declared % self.widen:
            raise UsageError(f"activation {self.act!r} needs widths divisible by {self.widen}, got {declared}")
        return declared // self.widen


def named(*layers: tuple[str, nn.Module | None]) -> nn.Sequential:
    """nn.Sequential whose children have names (skipping None), so that state_dict keys and
    exported ONNX node names read `pw.conv` instead of `1.0`. Children keep their order: old
    checkpoints, whose keys are these positions, load through `effconv.zoo.legacy`."""
    return nn.Sequential(OrderedDict((name, m) for name, m in layers if m is not None))


def conv_norm_act(
    style: Style, cin: int, cout: int, k: int, stride: int = 1, *,
    padding: int | None = None, groups: int = 1, act: bool = True, norm: bool = True,
) -> nn.Sequential:
    """conv -> norm -> act (or conv -> act -> norm for LRN); yields `cout` channels either way."""
    nrm = get_norm(style.norm) if norm else NORMS["none"]
    c = style.halve(cout) if act else cout
    pad = k // 2 if padding is None else padding
    conv = nn.Conv2d(cin, c, k, stride, pad, groups=groups, bias=not nrm.shifts)
    layers: list[tuple[str, nn.Module]] = [("conv", conv)]
    if nrm.make is not None and not (nrm.after_act and act):
        layers.append(("norm", nrm.make(c)))
    if act:
        layers.append(("act", style.activation()))
        if nrm.make is not None and nrm.after_act:
            layers.append(("norm", nrm.make(cout)))
    return named(*layers)


def depthwise_separable(style: Style, cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """MobileNet's block: depthwise 3x3 -> norm -> act (`dw`), pointwise 1x1 -> norm -> act (`pw`)."""
    dw = conv_norm_act(style.same_width(), cin, cin, 3, stride, groups=cin)
    return named(("dw", dw), ("pw", conv_norm_act(style, cin, cout, 1)))


def separable_conv(style: Style, cin: int, cout: int, *, act: bool = True) -> nn.Sequential:
    """Xception's separable conv: depthwise 3x3 (`dw`, no norm, no act) -> pointwise 1x1 -> norm [-> act] (`pw`)."""
    dw = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
    return named(("dw", dw), ("pw", conv_norm_act(style, cin, cout, 1, act=act)))


def linear_act(style: Style, fin: int, fout: int, dropout: float = 0.0) -> nn.Sequential:
    """[dropout ->] fully connected -> act, yielding `fout` features."""
    drop = nn.Dropout(dropout) if dropout > 0 else None
    return named(("dropout", drop), ("linear", nn.Linear(fin, style.halve(fout))), ("act", style.activation()))


def classifier(fin: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """[dropout ->] fully connected to the class scores."""
    return named(("dropout", nn.Dropout(dropout) if dropout > 0 else None), ("linear", nn.Linear(fin, num_classes)))


def pooled_head(fin: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pool -> flatten -> `classifier` (`fc`): the head of the pooled families."""
    pool, flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()
    return named(("pool", pool), ("flatten", flatten), ("fc", classifier(fin, num_classes, dropout)))


def network(features: list[nn.Module], head: nn.Module) -> nn.Sequential:
    """The families' top level: `features` (numbered layers) then `classifier`."""
    return named(("features", nn.Sequential(*features)), ("classifier", head))


class Residual(nn.Module):
    """act(branch(x) + shortcut(x)); the branch ends WITHOUT activation, in pre-activation width."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.branch, self.shortcut, self.act = branch, shortcut, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.branch(x) + self.shortcut(x))


class PadShortcut(nn.Module):
    """Parameter-free shortcut (ResNet option A): subsample by `stride`, zero-pad new channels."""

    def __init__(self, widen: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        self.fold, self.stride, self.extra = Fold(widen), stride, (cout - cin) // widen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fold(x)[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


def out_size(size: int, k: int, stride: int = 1, padding: int = 0, ceil: bool = False) -> int:
    """Spatial output size of a conv or pool (pixels)."""
    span = size + 2 * padding - k
    return (-(-span // stride) if ceil else span // stride) + 1


def check_feature_size(size: int, input_size: int, family: str) -> int:
    if size < 1:
        raise UsageError(f"{family}: input_size {input_size} is too small for this configuration")
    return size
