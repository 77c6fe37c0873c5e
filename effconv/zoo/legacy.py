"""Checkpoints written before the zoo's modules were named still load.

Until then every family was unnamed nested `nn.Sequential`s, so a state_dict key was the chain of
child POSITIONS (`0.1.0.0.weight` for MobileNet's first depthwise conv, now
`features.1.dw.conv.weight`). Naming kept every nesting level and every child's position, so the
old key of a parameter is its new key with each child of an `nn.Sequential` replaced by its
position; the children of other modules kept their names, except where a module lists what it
renamed in `LEGACY_NAMES` (new name -> old name; InceptionModule's branches).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from torch import nn


def _prefixes(module: nn.Module, new: str = "", old: str = "") -> Iterator[tuple[str, str]]:
    """(new module path, old module path) for `module` and everything below it."""
    yield new, old
    renamed = getattr(module, "LEGACY_NAMES", {})
    for position, (name, child) in enumerate(module.named_children()):
        was = str(position) if isinstance(module, nn.Sequential) else renamed.get(name, name)
        yield from _prefixes(child, f"{new}.{name}" if new else name, f"{old}.{was}" if old else was)


def _join(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def legacy_keys(model: nn.Module) -> dict[str, str]:
    """Old state_dict key -> current key, for every key of `model`'s state_dict."""
    paths = dict(_prefixes(model))
    out = {}
    for key in model.state_dict():
        prefix, _, leaf = key.rpartition(".")
        out[_join(paths[prefix], leaf)] = key
    return out


def upgrade_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """`state_dict` with old-layout keys renamed to `model`'s; returned unchanged (the same
    object) when its keys already are the model's, or are not all old-layout keys of it (then
    `load_state_dict` reports the mismatch as before)."""
    current = model.state_dict().keys()
    if all(k in current for k in state_dict):
        return state_dict
    renames = legacy_keys(model)
    if not all(k in renames for k in state_dict):
        return state_dict
    upgraded = OrderedDict((renames[k], v) for k, v in state_dict.items())
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:  # per-module versions (batchnorm's), keyed by module path
        paths = {old: new for new, old in _prefixes(model)}
        renamed = OrderedDict((paths.get(k, k), v) for k, v in metadata.items())
        upgraded._metadata = renamed  # type: ignore[attr-defined]
    return upgraded
