"""What a run needs before the loop starts: data, model, run directory (new or resumed), runtime."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from effconv import __version__
from effconv.training import checkpoint as ckpt
from effconv.data import CifarArrays
from effconv.errors import UsageError
from effconv.io import write_text
from effconv.training.config import TrainConfig

if TYPE_CHECKING:
    import torch

    from effconv.specs import ModelSpec
    from effconv.training.metrics import MetricsRow
    from effconv.training.runtime import Runtime


@dataclass(frozen=True)
class TrainData:
    train: CifarArrays
    test: CifarArrays
    source: str = ""  # where it came from, recorded in config.json


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    run_id: str
    step: int
    total_steps: int
    test_acc: float | None  # at the last evaluation (fraction, 0-1)
    best_acc: float | None
    rows: tuple["MetricsRow", ...]
    images_per_s: float  # mean over the logged windows of this session
    elapsed: float  # seconds of training, summed over sessions


@dataclass(frozen=True)
class RunSetup:
    spec: "ModelSpec"
    config: TrainConfig
    runtime: "Runtime"
    data: TrainData
    model: "torch.nn.Module"
    run_dir: Path
    run_id: str
    total_steps: int
    resume_payload: dict[str, Any] | None
    quiet: bool


def take_subset(data: TrainData, config: TrainConfig) -> TrainData:
    """A fixed random subset of `config.subset` training images (drawn with the run's seed)."""
    if config.subset is None or config.subset >= len(data.train):
        return data
    keep = np.sort(np.random.default_rng(config.seed).permutation(len(data.train))[: config.subset])
    train = CifarArrays(data.train.images[keep], data.train.labels[keep], data.train.classes)
    return TrainData(train, data.test, data.source)


def default_run_dir(spec_name: str) -> Path:
    return Path("runs") / f"{spec_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def start_run_dir(run_dir: Path, record: dict[str, Any], is_main: bool) -> None:
    """Create the run directory and write config.json; refuse a folder that already holds a run."""
    if not is_main:
        return
    if (run_dir / ckpt.LAST).exists():
        raise UsageError(f"already holds a run; continue it with --resume {run_dir} or pick another --out", path=run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # permission, read-only file system, a file in the way
        raise UsageError(f"cannot create the run directory ({exc.strerror or exc})", path=run_dir) from exc
    write_text(run_dir / ckpt.CONFIG, json.dumps(record, indent=2) + "\n")


def run_record(spec: "ModelSpec", config: TrainConfig, data: TrainData, run_id: str, total: int, rt) -> dict:
    import torch

    return {
        "run_id": run_id,
        "spec": ckpt.spec_to_dict(spec),
        "config": config.to_dict(),
        "total_steps": total,
        "train_images": len(data.train),
        "test_images": min(len(data.test), config.eval_subset or len(data.test)),
        "data_source": data.source,
        "world_size": rt.shard.world,
        "device": str(rt.device),
        "versions": {"effconv": __version__, "torch": torch.__version__},
    }


def update_run_record(run_dir: Path, config: TrainConfig, total: int) -> None:
    """A resumed run with a new --steps: config.json records the new total and configuration, so
    readers (compare, experiment report, the progress) do not report 250 steps of 200."""
    record = ckpt.read_config_json(run_dir)
    if record.get("total_steps") == total and record.get("config") == config.to_dict():
        return
    record.update(total_steps=total, config=config.to_dict())
    write_text(run_dir / ckpt.CONFIG, json.dumps(record, indent=2) + "\n")
