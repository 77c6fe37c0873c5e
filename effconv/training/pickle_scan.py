"""The pickle scan of a checkpoint: every import its pickle would make, read opcode by opcode
(nothing is executed or loaded), refused unless it rebuilds tensors and plain values.

effconv.training.checkpoint runs it before `torch.load(weights_only=True)`, as a second line of
defence. It lives with the checkpoints, not in the sandbox: data flows one way (ARCHITECTURE.md),
and the checkpoint stage may import only stages to its left and the ground floor.
"""

from __future__ import annotations

import pickletools
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

from effconv.errors import InvalidInputError

# What a tensors-and-plain-values checkpoint may reference: torch's tensor rebuilders, storages,
# dtypes, sizes and devices, and OrderedDict (state dicts). Anything else is code.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"),
}
_TORCH_NAMES = re.compile(r"[A-Za-z0-9]*Storage|u?int(8|16|32|64)|float(16|32|64)|bfloat16|bool|half|"
                          r"double|long|short|complex(64|128)")


def pickle_globals(data: bytes) -> list[tuple[str, str]]:
    """Every (module, name) a pickle would import, found by reading opcodes (nothing is executed)."""
    found, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            found.append((module, name))
        elif op.name == "STACK_GLOBAL":
            found.append((strings[-2], strings[-1]) if len(strings) >= 2 else ("?", "?"))
        elif isinstance(arg, str):
            strings.append(arg)
    return found


def checkpoint_pickles(path: str | Path) -> Iterable[tuple[str, bytes]]:
    """The pickle streams of a torch checkpoint: data.pkl of a zip archive, or the whole legacy file."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return [(n, zf.read(n)) for n in zf.namelist() if n.endswith(".pkl")]
    return [(path.name, path.read_bytes())]


def refuse_code_in_pickle(path: str | Path) -> None:
    """InvalidInputError naming the first import a checkpoint's pickle would make beyond tensors and
    plain values (os.system, builtins.eval, ...). Scans only; run it before torch.load."""
    try:
        streams = checkpoint_pickles(path)
        refs = [(member, g) for member, data in streams for g in pickle_globals(data)]
    except (OSError, ValueError, zipfile.BadZipFile, IndexError, EOFError) as exc:
        raise InvalidInputError(f"not a readable checkpoint ({type(exc).__name__})", path=path) from exc
    for member, (module, name) in refs:
        if (module, name) in _SAFE_GLOBALS or (module == "torch" and _TORCH_NAMES.fullmatch(name)):
            continue
        raise InvalidInputError(
            f"checkpoint would import {module}.{name} when unpickled ({member}): refused, effconv loads "
            "only tensors and plain values", path=path)

