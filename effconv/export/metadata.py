"""What an exported ONNX model says about itself, in `metadata_props` (string keys and values).

Keys (values are JSON text unless noted):
  effconv.version     the effconv version that wrote the file (plain text)
  effconv.spec        the model spec: name, family, sizes, arch and train tables
  effconv.run_id      the training run the weights came from ("" for fresh, seeded weights)
  effconv.seed        the seed of fresh weights (absent for trained runs)
  effconv.input_size  input height = width in pixels
  effconv.mean        per-channel normalization mean on the 0-1 pixel scale (absent if unknown)
  effconv.std         per-channel normalization std on the 0-1 pixel scale (absent if unknown)
  effconv.classes     class names in output order (absent if unknown)
  effconv.precision   fp32 | fp16, and effconv.io_dtype float32 | float16
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PREFIX = "effconv."


def plain(value: Any) -> Any:
    """Turn mappings, sequences and paths into JSON-ready dicts, lists and strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def spec_dict(spec: Any) -> dict[str, Any]:
    """The fields of a ModelSpec as plain JSON data (source path as text)."""
    keys = ("name", "family", "description", "input_size", "in_channels", "num_classes", "arch",
            "train", "source")
    return {k: plain(getattr(spec, k, None)) for k in keys}


def build_metadata(source: Any, *, precision: str, io_fp16: bool) -> dict[str, str]:
    """metadata_props for an `ExportSource` (see effconv.export.source)."""
    from effconv import __version__

    meta = {
        "version": __version__,
        "spec": json.dumps(spec_dict(source.spec), sort_keys=True),
        "run_id": source.run_id or "",
        "input_size": str(source.spec.input_size),
        "precision": precision,
        "io_dtype": "float16" if io_fp16 else "float32",
    }
    if source.seed is not None:
        meta["seed"] = str(source.seed)
    for key in ("mean", "std", "classes"):
        value = getattr(source, key)
        if value is not None:
            meta[key] = json.dumps(plain(value))
    return {PREFIX + k: v for k, v in meta.items()}


def set_metadata(model, meta: Mapping[str, str]) -> None:
    """Replace same-named metadata_props entries of the ONNX `model` with `meta`, in place."""
    kept = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(path: str | Path) -> dict[str, str]:
    """The effconv.* metadata of an ONNX file (external data is not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
