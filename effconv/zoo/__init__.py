"""The model zoo: `ARCHS` maps a family name to its builder; `build_model(spec)` builds a spec.

A builder takes keyword arguments only: `num_classes`, `in_channels`, `input_size` (from the spec's
top level) and its own options (the spec's [arch] table), each with a default whose type is the
type the spec must give. `register_arch(name, choices=...)` records, per option, the values allowed
(a dict's keys or a tuple), so a spec is checked before anything is built.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from effconv.errors import UsageError
from effconv.specs import ModelSpec, SpecError
from effconv.zoo import blocks
from effconv.zoo.legacy import upgrade_state_dict

ARCHS: dict[str, Callable[..., nn.Module]] = {}
CHOICES: dict[str, dict[str, tuple]] = {}  # family -> option -> allowed values
RESERVED = ("num_classes", "in_channels", "input_size")  # top-level spec keys, not [arch]
SHARED_CHOICES = {"activation": tuple(blocks.ACTIVATIONS), "norm": tuple(blocks.NORMS)}
__all__ = ["ARCHS", "build_model", "check_arch", "count_parameters", "register_arch", "upgrade_state_dict"]

FAMILIES = ("alexnet", "vgg", "inception", "resnet", "mobilenet", "xception", "capsnet")


def register_arch(name: str, *, choices: Mapping[str, Any] | None = None):
    """Decorator: register a family builder under `name` (duplicates are refused)."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ARCHS:
            raise ValueError(f"architecture {name!r} is already registered")
        ARCHS[name] = builder
        CHOICES[name] = {k: tuple(v) for k, v in (choices or {}).items()}
        return builder

    return wrap


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


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the spec's model (freshly initialized, train mode, on the current default device)."""
    builder = ARCHS.get(spec.family)
    if builder is None:
        raise SpecError(f"unknown family {spec.family!r}; allowed: {', '.join(sorted(ARCHS))}", path=spec.source)
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


def _import_families() -> None:
    for name in FAMILIES:
        importlib.import_module(f"effconv.zoo.{name}")


_import_families()
