"""Checkpoints: atomic save, exact resume, and `load_run` for export.

A checkpoint holds only tensors and plain Python values (dicts, lists, tuples, str, numbers, None),
so it loads with `torch.load(weights_only=True)`; effconv never unpickles anything else. It is
serialized in memory, written to a temporary file and renamed into place, so a full disk or a
crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from effconv.training import integrity
from effconv.errors import InvalidInputError, UsageError
from effconv.io import atomic_path
from effconv.training.pickle_scan import refuse_code_in_pickle

if TYPE_CHECKING:
    import torch

    from effconv.specs import ModelSpec

FORMAT = "effconv-checkpoint/1"
LAST, BEST, CONFIG = "last.pt", "best.pt", "config.json"


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Serialize `payload` (tensors and plain values only) and write it atomically to `path`."""
    import torch

    buffer = io.BytesIO()
    torch.save(integrity.seal({"format": FORMAT, **payload}), buffer)  # with its content hash
    remove_stale_temporaries(path)
    with atomic_path(path, suffix=".pt") as tmp:
        _write(tmp, buffer.getbuffer())
    return Path(path)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the half-written `.<name>.XXXXXXXX.pt` files that a writer killed mid-save (kill -9,
    power loss) left beside `path`; return them. Only effconv's own temporary-file pattern
    (effconv.io.atomic_path: mkstemp's 8 random characters) is touched, and one writer per run
    directory is assumed, so no live save is in progress."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.pt")
    removed = []
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.pt"):
        if pattern.fullmatch(stale.name) and stale.is_file() and not stale.is_symlink():
            with contextlib.suppress(OSError):  # gone already, or a read-only folder: harmless
                stale.unlink()
                removed.append(stale)
    return removed


def _write(path: Path, data: memoryview) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load an effconv checkpoint with weights_only=True, after a scan of its pickle for imports
    beyond tensors and plain values; InvalidInputError if it is not one."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UsageError("checkpoint not found", path=path)
    integrity.check_zip_crc(path)  # a changed byte is found before anything is unpickled
    refuse_code_in_pickle(path)  # a second line of defence: scan the opcodes before unpickling
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or holding objects weights_only refuses
        raise InvalidInputError(f"not a loadable effconv checkpoint ({type(exc).__name__})", path=path) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidInputError(f"not an effconv checkpoint (expected format {FORMAT})", path=path)
    integrity.verify(payload, path)
    return payload


# Random number generators --------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """Every global RNG state as tensors and plain values (torch CPU and CUDA, numpy, Python)."""
    import torch

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# Specs as plain data -------------------------------------------------------------------------------
def spec_to_dict(spec: "ModelSpec") -> dict[str, Any]:
    """The spec as plain data (its TOML table plus where it came from) for checkpoints and JSON."""
    return {**spec.to_dict(), "source": str(spec.source) if spec.source else None}


def spec_from_dict(data: Mapping[str, Any]) -> "ModelSpec":
    """Rebuild (and re-validate) a spec saved by `spec_to_dict`."""
    from effconv.specs import spec_from_dict as build

    values = dict(data)
    source = values.pop("source", None)
    return build(values, source=Path(source) if source else None)


# Loading a finished run ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedRun:
    """A trained model ready for export: eval mode, weights from best.pt (else last.pt)."""

    model: "torch.nn.Module"
    spec: "ModelSpec"
    run_id: str
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)


def checkpoint_in(path: str | Path) -> Path:
    """`path` if it is a file; in a run directory, best.pt, else last.pt."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise UsageError(f"run directory has neither {BEST} nor {LAST}", path=path)
    return path


def load_run(path: str | Path) -> LoadedRun:
    """Rebuild the model of a run directory or checkpoint file (weights loaded with weights_only=True)."""
    from effconv.zoo import build_model, upgrade_state_dict

    ckpt_path = checkpoint_in(path)
    payload = load_checkpoint(ckpt_path)
    spec = spec_from_dict(payload["spec"])
    model = build_model(spec)
    try:
        model.load_state_dict(upgrade_state_dict(model, payload["model"]))
    except RuntimeError as exc:
        raise InvalidInputError(f"weights do not fit the {spec.name} spec ({exc})", path=ckpt_path) from exc
    meta = {k: payload.get(k) for k in ("step", "test_acc", "best_acc", "config", "kind")}
    meta["checkpoint"] = str(ckpt_path)
    return LoadedRun(
        model=model.eval(),
        spec=spec,
        run_id=str(payload["run_id"]),
        classes=tuple(payload["classes"]),
        mean=tuple(payload["mean"]),
        std=tuple(payload["std"]),
        meta=meta,
    )


def read_config_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"not a run directory (no {CONFIG})", path=run_dir) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{CONFIG} is not valid JSON ({exc})", path=path) from exc
