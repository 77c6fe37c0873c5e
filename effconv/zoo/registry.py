"""The zoo's registry: `ARCHS` maps a family name to its builder, `CHOICES` its options' allowed
values. Family modules register themselves with `register_arch`; effconv.zoo imports them all."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

ARCHS: dict[str, Callable[..., nn.Module]] = {}
CHOICES: dict[str, dict[str, tuple]] = {}  # family -> option -> allowed values


def register_arch(name: str, *, choices: Mapping[str, Any] | None = None):
    """Decorator: register a family builder under `name` (duplicates are refused)."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ARCHS:
            raise ValueError(f"architecture {name!r} is already registered")
        ARCHS[name] = builder
        CHOICES[name] = {k: tuple(v) for k, v in (choices or {}).items()}
        return builder

    return wrap
