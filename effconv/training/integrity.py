"""Checkpoint integrity: a content hash written with every checkpoint and checked on load, after
the zip's own CRC-32s, so a changed byte is exit 3 naming the file instead of weights that load,
export and report "parity: passed".

The hash (SHA-256) is over the payload's content, walked in a fixed order: every tensor's dtype,
shape and raw bytes, every plain value's type and repr, dict keys sorted. It is stored in the
payload itself under DIGEST_KEY, so a checkpoint stays one file (renamed into place atomically).
Checkpoints written before the hash existed load as before, with a note that they are unverified.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from effconv.errors import InvalidInputError

DIGEST_KEY = "content_sha256"


def content_digest(payload: Mapping[str, Any]) -> str:
    """The hex SHA-256 of `payload`'s content (tensors and plain values; see the module doc)."""
    h = hashlib.sha256()
    _feed(h, payload)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    kind = type(value).__name__
    if isinstance(value, Mapping):
        h.update(f"dict{len(value)}(".encode())
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
        h.update(b")")
    elif isinstance(value, (list, tuple)):
        h.update(f"{kind}{len(value)}(".encode())
        for item in value:
            _feed(h, item)
        h.update(b")")
    elif hasattr(value, "untyped_storage") and hasattr(value, "dtype"):  # a torch tensor
        _feed_tensor(h, value)
    else:
        h.update(f"{kind}:{value!r};".encode())


def _feed_tensor(h, tensor) -> None:
    import torch

    t = tensor.detach().cpu().contiguous().reshape(-1)
    h.update(f"tensor:{t.dtype}:{tuple(tensor.shape)}:".encode())
    if t.numel():
        h.update(memoryview(t.view(torch.uint8).numpy()))


def check_zip_crc(path: Path) -> None:
    """Every member's CRC-32 (torch.save writes a zip; torch.load does not check them). A file
    that is no zip at all is left to the pickle scan and torch.load, which say what it is."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(f"not a loadable effconv checkpoint (damaged zip: {exc})", path=path) from exc
    except (OSError, EOFError) as exc:
        raise InvalidInputError(f"cannot read the checkpoint ({exc})", path=path) from exc
    if bad is not None:
        raise InvalidInputError(f"corrupt checkpoint: {bad} fails its zip CRC check (the file changed after it "
                                "was written)", path=path)


def seal(payload: Mapping[str, Any]) -> dict[str, Any]:
    """`payload` with its content hash added."""
    return {**payload, DIGEST_KEY: content_digest(payload)}


def verify(payload: dict[str, Any], path: Path) -> bool:
    """Check and remove the stored hash; InvalidInputError (exit 3) when the content differs.
    Returns False for an older checkpoint without one (a note goes to stderr)."""
    stored = payload.pop(DIGEST_KEY, None)
    if stored is None:
        sys.stderr.write(f"effconv: note: {path}: no content hash (written by an older effconv); "
                         "loaded without checking its bytes\n")
        return False
    if content_digest(payload) != stored:
        raise InvalidInputError("corrupt checkpoint: its content does not match the hash written with it "
                                "(changed after effconv wrote it)", path=path)
    return True
