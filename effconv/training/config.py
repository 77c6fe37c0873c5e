"""TrainConfig: a frozen dataclass built from a spec's [train] table plus command-line overrides.

Defaults are Adam's published ones (lr 0.001, betas 0.9/0.999, eps 1e-8) with a constant learning
rate. Unknown keys, wrong types and unknown choices are UsageErrors naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from effconv.errors import UsageError

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "onecycle")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 0.001  # peak learning rate (the constant one unless a schedule is set)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's beta1, beta2
    eps: float = 1e-8  # Adam / RMSprop / Adagrad denominator epsilon
    momentum: float = 0.9  # SGD and RMSprop
    nesterov: bool = False  # SGD only
    weight_decay: float = 0.0  # L2 penalty added to the gradient (torch's coupled form)
    batch_size: int = 128  # global batch: split evenly over DDP ranks
    steps: int | None = None  # optimizer steps; or `epochs` (passes over the train set, last partial batch dropped)
    epochs: int | None = None
    schedule: str = "constant"
    label_smoothing: float = 0.0
    augment: bool = True  # random crop (4-pixel padding) and horizontal flip of training images
    precision: str = "fp32"  # autocast dtype on CUDA; bf16 also on CPU
    seed: int = 0
    eval_every: int = 1000  # steps between test-set evaluations (and checkpoints)
    log_every: int = 50  # steps between loss/accuracy readings (each one syncs the device)
    deterministic: bool = False
    compile: bool = False  # torch.compile the model
    channels_last: bool = True  # NHWC memory format, used on CUDA only
    subset: int | None = None  # train on this many images (a fixed random subset), for quick runs
    eval_subset: int | None = None  # evaluate on N test images, a fixed random draw (None: all 10,000)
    device: str = "auto"  # auto: cuda if available (cuda:LOCAL_RANK under torchrun), else cpu
    synthetic_gradients: bool = False  # VGG family only: decoupled blocks (effconv.training.synthetic_gradients.run_synthetic)

    DEFAULT_STEPS = 10_000  # when neither steps nor epochs is given

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["betas"] = list(self.betas)
        return out

    def total_steps(self, train_images: int) -> int:
        """Optimizer steps for a train set of `train_images` images (after `subset`)."""
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return self.epochs * max(1, min(train_images, self.subset or train_images) // self.batch_size)
        return self.DEFAULT_STEPS


_TYPES = {f.name: f.type for f in fields(TrainConfig)}
_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "precision": PRECISIONS}
_POSITIVE = ("lr", "batch_size", "steps", "epochs", "eval_every", "log_every", "subset", "eval_subset")


def config_from_table(
    table: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *, source: Path | str | None = None
) -> TrainConfig:
    """Validate a [train] table, apply overrides (None values are ignored) and build the config.

    An override of `steps` clears a table's `epochs` and vice versa, so the command line wins.
    """
    values = dict(table)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in ("steps", "epochs"):
            values.pop("epochs" if key == "steps" else "steps", None)
        values[key] = value
    for key in values:
        if key not in _TYPES:
            raise UsageError(
                f"unknown [train] key {key!r}; allowed: {', '.join(sorted(_TYPES))}", path=source
            )
    if values.get("steps") is not None and values.get("epochs") is not None:
        raise UsageError("[train] sets both 'steps' and 'epochs'; keep one", path=source)
    checked = {k: _check(k, v, source) for k, v in values.items()}
    return TrainConfig(**checked)


def config_from_dict(data: Mapping[str, Any], *, source: Path | str | None = None) -> TrainConfig:
    """Rebuild a config saved by `TrainConfig.to_dict` (config.json, checkpoints)."""
    return config_from_table({k: v for k, v in data.items() if k in _TYPES}, source=source)


def _check(key: str, value: Any, source) -> Any:
    kind = _TYPES[key]
    bad = UsageError(f"[train] {key} = {value!r}: expected {kind}", path=source)
    if key == "betas":
        if not (isinstance(value, (list, tuple)) and len(value) == 2):
            raise bad
        value = tuple(float(_number(v, bad)) for v in value)
        if not all(0.0 <= b < 1.0 for b in value):
            raise UsageError(f"[train] betas = {list(value)}: each must be in [0, 1)", path=source)
        return value
    if value is None and "None" in kind:
        return None
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise bad
    elif kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif kind.startswith("float"):
        value = float(_number(value, bad))
        if not math.isfinite(value):
            raise UsageError(f"[train] {key} = {value!r}: must be a finite number", path=source)
    elif kind.startswith("str") and not isinstance(value, str):
        raise bad
    if key in _CHOICES and value not in _CHOICES[key]:
        raise UsageError(f"[train] {key} = {value!r}: use one of {', '.join(_CHOICES[key])}", path=source)
    if key in _POSITIVE and value <= 0:
        raise UsageError(f"[train] {key} = {value!r}: must be > 0", path=source)
    if key in ("weight_decay", "momentum", "label_smoothing", "eps") and value < 0:
        raise UsageError(f"[train] {key} = {value!r}: must be >= 0", path=source)
    return value


def _number(value: Any, bad: UsageError) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    return value


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    return dataclasses.replace(config, **changes)
