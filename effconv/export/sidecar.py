"""The sidecar of a TensorRT engine: `<engine>.json`, written by effconv beside every engine it builds.

A serialized engine is executable code tied to one TensorRT version and one GPU model. effconv
loads an engine only when its sidecar exists, parses, and names the engine's exact sha256; the
TensorRT version and GPU name are then compared with the running ones (effconv.export.tensorrt).
Everything here is plain Python, so the refusal logic is tested where TensorRT is absent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from effconv.errors import InvalidInputError

SIDECAR_FORMAT = "effconv-tensorrt-engine/1"


@dataclass(frozen=True)
class Sidecar:
    tensorrt: str  # tensorrt.__version__ that built the engine
    gpu: str  # torch.cuda.get_device_name() of the building GPU
    compute_capability: str  # "major.minor"
    precision: str  # fp32 | fp16 | int8
    flags: tuple[str, ...]  # BuilderFlag names set
    engine_sha256: str
    onnx: str  # file name of the ONNX it was built from (beside the engine, unless a user's file)
    onnx_sha256: str
    effconv: str  # effconv version
    format: str = SIDECAR_FORMAT

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "flags": list(self.flags)}, indent=2, sort_keys=True) + "\n"


def sidecar_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):  # 1 MiB blocks: engines reach GBs
            digest.update(block)
    return digest.hexdigest()


def read_sidecar(engine: str | Path) -> Sidecar:
    """Parse the engine's sidecar; InvalidInputError (exit 3) if it is missing or malformed."""
    side = sidecar_path(engine)
    if not side.is_file():
        raise InvalidInputError(
            f"no sidecar {side.name} beside the engine: effconv loads only engines it built", path=engine)
    try:
        raw = json.loads(side.read_text(encoding="utf-8"))
        raw["flags"] = tuple(raw["flags"])
        sidecar = Sidecar(**raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"malformed sidecar ({type(exc).__name__}: {exc})", path=side) from exc
    if sidecar.format != SIDECAR_FORMAT:
        raise InvalidInputError(f"unknown sidecar format {sidecar.format!r}", path=side)
    return sidecar


def verified_engine_bytes(engine: str | Path) -> tuple[bytes, Sidecar]:
    """Read the engine once and check it against its sidecar's sha256; return what was checked, so
    the bytes deserialized are exactly the bytes verified."""
    engine = Path(engine)
    sidecar = read_sidecar(engine)
    try:
        data = engine.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read engine ({exc.strerror})", path=engine) from exc
    actual = sha256_bytes(data)
    if actual != sidecar.engine_sha256:
        raise InvalidInputError(
            f"engine sha256 {actual[:12]}... does not match its sidecar ({sidecar.engine_sha256[:12]}...): "
            "refusing to load a modified or foreign engine", path=engine)
    return data, sidecar


def check_runtime(sidecar: Sidecar, *, tensorrt_version: str, gpu: str, engine: str | Path) -> None:
    """Refuse an engine built by another TensorRT version or on another GPU model (exit 3)."""
    if sidecar.tensorrt != tensorrt_version:
        raise InvalidInputError(
            f"engine built with TensorRT {sidecar.tensorrt}, this is {tensorrt_version}: rebuild it", path=engine)
    if sidecar.gpu != gpu:
        raise InvalidInputError(f"engine built on {sidecar.gpu}, this GPU is {gpu}: rebuild it", path=engine)
