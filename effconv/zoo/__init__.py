"""The model zoo: `ARCHS` maps a family name to its builder; `build_model(spec)` builds a spec.

A builder takes keyword arguments only: `num_classes`, `in_channels`, `input_size` (from the spec's
top level) and its own options (the spec's [arch] table), each with a default whose type is the
type the spec must give. `register_arch(name, choices=...)` records, per option, the values allowed
(a dict's keys or a tuple). The builders are the schema of [arch], so the zoo checks it (the spec
reader, effconv.specs, stays torch-free): `build_model` checks before it builds, `check_spec`
checks without building (for callers that want the error before any other work), and `with_arch`
(a spec with [arch] overrides) checks what it returns.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from effconv.errors import UsageError
from effconv.specs import ModelSpec, SpecError, spec_from_dict

# each family module registers its builder in ARCHS when imported
from effconv.zoo import alexnet, blocks, capsnet, inception, mobilenet, resnet, vgg, xception  # noqa: F401
from effconv.zoo.legacy import upgrade_state_dict
from effconv.zoo.registry import ARCHS, CHOICES, register_arch

__all__ = [
    "ARCHS", "CHOICES", "build_model", "check_arch", "check_spec", "count_parameters", "register_arch",
    "upgrade_state_dict", "with_arch",
]

RESERVED = ("num_classes", "in_channels", "input_size")  # top-level spec keys, not [arch]
SHARED_CHOICES = {"activation": tuple(blocks.ACTIVATIONS), "norm": tuple(blocks.NORMS)}


def _options(builder: Callable) -> tuple[dict[str, inspect.Parameter], bool]:
    params = inspect.signature(builder).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    usable = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = {k: p for k, p in params.items() if k not in RESERVED and p.kind in usable}
    return named, open_ended


def _check_value(family: str, key: str, value: Any, default: Any, where: Path | str) -> None:
    kind = type(default)
    if default is inspect.Parameter.empty:  # no default, no declared type to check against
        ok = True
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, Mapping):
        ok, kind = isinstance(value, Mapping), dict
    elif isinstance(default, (tuple, list)):
        ok, kind = isinstance(value, (tuple, list)), list
    else:
        ok = default is None or isinstance(value, kind)
    if not ok:
        raise SpecError(f"[arch] {key} must be {kind.__name__}, got {type(value).__name__} {value!r}", path=where)
    allowed = CHOICES[family].get(key, SHARED_CHOICES.get(key))
    if allowed is not None and value not in allowed:
        raise SpecError(f"[arch] {key} = {value!r} is not allowed; allowed: {', '.join(map(str, allowed))}", path=where)


def check_arch(family: str, arch: Mapping[str, Any], *, where: Path | str = "<spec>") -> None:
    """Raise SpecError unless `arch` is a valid set of options for `family`."""
    if family not in ARCHS:
        raise SpecError(f"unknown family {family!r}; allowed: {', '.join(sorted(ARCHS))}", path=where)
    named, open_ended = _options(ARCHS[family])
    for key, value in arch.items():
        if key not in named:
            if open_ended and key not in RESERVED:
                continue
            raise SpecError(f"unknown key {key!r} in [arch]; allowed: {', '.join(named)}", path=where)
        _check_value(family, key, value, named[key].default, where)
    try:
        if "activation" in named or "act_args" in named:
            act = arch.get("activation", named["activation"].default if "activation" in named else "relu")
            blocks.check_act_args(act, arch.get("act_args", {}))
    except UsageError as exc:
        raise SpecError(f"[arch] {exc}", path=where) from exc


def check_spec(spec: ModelSpec) -> ModelSpec:
    """`spec`, after checking its [arch] against its family's builder (SpecError naming the file)."""
    check_arch(spec.family, spec.arch, where=spec.source or f"<spec {spec.name}>")
    return spec


def with_arch(spec: ModelSpec, **overrides: Any) -> ModelSpec:
    """A copy of `spec` with [arch] keys replaced (e.g. activation="swish"), checked (`check_spec`)."""
    data = spec.to_dict()
    data["arch"].update(overrides)
    return check_spec(spec_from_dict(data, source=spec.source))


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the spec's model (freshly initialized, train mode, on the current default device),
    after checking its [arch] (`check_spec`)."""
    builder = ARCHS[check_spec(spec).family]
    params = inspect.signature(builder).parameters
    top = {"num_classes": spec.num_classes, "in_channels": spec.in_channels, "input_size": spec.input_size}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in top.items() if k in params or open_ended}
    try:
        return builder(**kwargs, **dict(spec.arch))
    except UsageError as exc:
        raise SpecError(str(exc), path=spec.source) from exc


def count_parameters(spec: ModelSpec) -> int:
    """Trainable parameters of the spec's model, counted on the meta device (nothing allocated)."""
    import torch

    with torch.device("meta"):
        model = build_model(spec)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
