"""What an export starts from: a training run (directory or checkpoint) or a zoo spec with fresh,
seeded weights. Both become one `ExportSource`: the model in eval mode plus what the exported file
must say about it (spec, run id, normalization, class names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effconv.errors import EffconvError, InvalidInputError, UsageError

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")
SPEC_SUFFIX = ".toml"


@dataclass(frozen=True)
class ExportSource:
    model: Any  # torch.nn.Module in eval mode
    spec: Any  # effconv.specs.ModelSpec
    run_id: str | None  # None for fresh weights
    seed: int | None  # the seed of fresh weights; None for a trained run
    classes: tuple[str, ...] | None
    mean: tuple[float, ...] | None  # per channel, 0-1 pixel scale
    std: tuple[float, ...] | None

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return self.spec.input_shape(batch)


def load_source(source: str | Path, *, seed: int = 0) -> ExportSource:
    """A run directory or checkpoint file -> its trained model; a zoo name or .toml -> fresh weights."""
    text = str(source)
    path = Path(text)
    if path.is_dir() or path.suffix in CHECKPOINT_SUFFIXES:
        return _from_run(path)
    return _from_spec(text, seed)


def _from_run(path: Path) -> ExportSource:
    if not path.exists():
        raise UsageError("no such run directory or checkpoint", path=path)
    from effconv.training.checkpoint import load_run

    try:
        run = load_run(path)
    except EffconvError:
        raise
    except Exception as exc:  # a checkpoint that does not unpickle or lacks keys
        raise InvalidInputError(f"unreadable checkpoint ({type(exc).__name__}: {exc})", path=path) from exc
    return ExportSource(
        model=run.model.eval(),
        spec=run.spec,
        run_id=str(run.run_id),
        seed=None,
        classes=tuple(run.classes) if run.classes else None,
        mean=tuple(float(v) for v in run.mean) if run.mean is not None else None,
        std=tuple(float(v) for v in run.std) if run.std is not None else None,
    )


def _from_spec(name_or_path: str, seed: int) -> ExportSource:
    import torch

    from effconv.specs import load_spec
    from effconv.zoo import build_model

    spec = load_spec(name_or_path)
    torch.manual_seed(seed)  # fresh weights are reproducible: same spec + seed, same file
    model = build_model(spec).eval()
    classes, mean, std = _cifar_defaults(spec)
    return ExportSource(model=model, spec=spec, run_id=None, seed=seed, classes=classes, mean=mean, std=std)


def _cifar_defaults(spec) -> tuple[tuple[str, ...] | None, tuple | None, tuple | None]:
    """A fresh 32x32, 3-channel, 10-class model is a CIFAR-10 model: its classes and normalization
    are CIFAR-10's. Any other shape has no known normalization, and says so by leaving it out."""
    if (spec.input_size, spec.in_channels, spec.num_classes) != (32, 3, 10):
        return None, None, None
    from effconv.data import CIFAR_MEAN, CIFAR_STD, CLASSES

    return tuple(CLASSES), tuple(float(v) for v in CIFAR_MEAN), tuple(float(v) for v in CIFAR_STD)
