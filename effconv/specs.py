"""Model specs: one TOML file per model in models/, loaded into a frozen `ModelSpec`.

A spec names a family (a key of `effconv.zoo.ARCHS`), the input and output sizes, the family
builder's keyword arguments ([arch]) and an optional training recipe ([train], validated by the
trainer). Unknown keys and bad values are `SpecError`s (exit 2) naming the file, the key and what is
allowed. This module checks the top level and stays torch-free: the family builders are the schema
of [arch], so the zoo checks it (`effconv.zoo.check_spec`, and `build_model` before it builds).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effconv.errors import UsageError

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


class SpecError(UsageError):
    """A spec file is malformed: names the file, the key and what is allowed (exit 2)."""


class FrozenDict(dict):
    """A read-only dict (still a dict, so it serializes to JSON and pickles)."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("spec tables are read-only; use effconv.zoo.with_arch")

    __setitem__ = __delitem__ = __ior__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # so a ModelSpec can be a dict key or a cache argument
        return hash(tuple(sorted(self.items())))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    description: str
    input_size: int  # pixels, square inputs
    in_channels: int
    num_classes: int
    arch: Mapping[str, Any]  # keyword arguments of the family builder (read-only)
    train: Mapping[str, Any]  # the raw [train] table (read-only), validated by effconv.training.api
    source: Path | None = None

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """NCHW shape of one input batch."""
        return (batch, self.in_channels, self.input_size, self.input_size)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the plain dict a TOML file holds (for checkpoints and JSON)."""
        return {
            "name": self.name, "family": self.family, "description": self.description,
            "input_size": self.input_size, "in_channels": self.in_channels,
            "num_classes": self.num_classes, "arch": _thaw(self.arch), "train": _thaw(self.train),
        }


# key: (type, required, default). bool is excluded from int explicitly below.
_TOP_LEVEL: dict[str, tuple[type, bool, Any]] = {
    "name": (str, True, None),
    "family": (str, True, None),
    "description": (str, False, ""),
    "input_size": (int, True, None),
    "in_channels": (int, False, 3),
    "num_classes": (int, True, None),
    "arch": (dict, False, {}),
    "train": (dict, False, {}),
}


def _check_type(value: Any, kind: type, key: str, where: Path | str) -> None:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise SpecError(f"key {key!r} must be {kind.__name__}, got {type(value).__name__} {value!r}", path=where)


def spec_from_dict(data: Mapping[str, Any], *, source: Path | None = None) -> ModelSpec:
    """Validate a spec table's top level into a ModelSpec ([arch] is the zoo's to check)."""
    where = source or f"<spec {data.get('name', '?')}>"
    for key in data:
        if key not in _TOP_LEVEL:
            raise SpecError(f"unknown key {key!r}; allowed: {', '.join(_TOP_LEVEL)}", path=where)
    values: dict[str, Any] = {}
    for key, (kind, required, default) in _TOP_LEVEL.items():
        if key not in data:
            if required:
                raise SpecError(f"missing required key {key!r}", path=where)
            values[key] = default
            continue
        _check_type(data[key], kind, key, where)
        values[key] = data[key]
    for key in ("input_size", "in_channels", "num_classes"):
        if values[key] < 1:
            raise SpecError(f"key {key!r} must be a positive integer, got {values[key]}", path=where)
    return ModelSpec(
        values["name"], values["family"], values["description"], values["input_size"],
        values["in_channels"], values["num_classes"], _freeze(values["arch"]), _freeze(values["train"]),
        source,
    )


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.is_file():
            raise SpecError("spec file not found", path=path)
        return path
    path = MODELS_DIR / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(MODELS_DIR.glob("*.toml")))
        raise SpecError(f"unknown model {text!r}; known: {known}")
    return path


def load_spec(name_or_path: str | Path) -> ModelSpec:
    """Load a zoo model by name (models/<name>.toml) or any spec file by path."""
    path = _resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", path=path) from exc
    return spec_from_dict(data, source=path)


def list_specs() -> list[ModelSpec]:
    """Every spec in models/, sorted by name."""
    return [load_spec(p) for p in sorted(MODELS_DIR.glob("*.toml"))]
