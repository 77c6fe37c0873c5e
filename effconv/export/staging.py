"""All-or-nothing multi-file outputs and ONNX external data.

An export can produce several files (model.onnx, model.onnx.data, model.engine, its sidecar). They
are first written into a hidden staging folder inside the output folder (same file system, so the
final renames are atomic), checked there, and moved into place only when every check passed. The
staging folder is removed whatever happens, so a failed export leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from effconv.errors import UsageError
from effconv.io import atomic_path

# Weights above this many bytes go to an external data file. Protobuf refuses messages over 2 GiB;
# 1 GiB of weights leaves headroom for the graph and for protobuf's own serialization copies.
DEFAULT_EXTERNAL_DATA_THRESHOLD = 1 << 30
EXTERNAL_DATA_SUFFIX = ".data"


STAGE_PREFIX = ".effconv-export-"
OWNER = ".owner"  # inside a stage: "<pid> <process start time>" of the export that made it
ORPHAN_AGE_S = 600  # a stage without an owner file (killed between mkdtemp and writing it)


@contextlib.contextmanager
def staging_dir(target_folder: Path) -> Iterator[Path]:
    """Yield a fresh hidden folder inside `target_folder`; remove it (and anything left) on exit.
    Ctrl-C and SIGTERM (raised as KeyboardInterrupt by the CLI) pass through the `finally` too; a
    stage that a kill -9 left behind is removed by the next export into the same folder."""
    if not target_folder.is_dir():
        raise UsageError("output folder does not exist", path=target_folder)
    remove_stale_stages(target_folder)
    try:
        stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=target_folder))
    except OSError as exc:
        raise UsageError(f"output folder is not writable ({exc.strerror})", path=target_folder) from exc
    try:
        (stage / OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n", encoding="ascii")
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def remove_stale_stages(folder: Path) -> list[Path]:
    """Remove the staging folders in `folder` whose export is gone (its pid is dead, or now names
    another process); return them. A live export's stage is never touched."""
    removed = []
    for stage in folder.glob(f"{STAGE_PREFIX}*"):
        if stage.is_dir() and not stage.is_symlink() and _is_stale(stage):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    return removed


def _is_stale(stage: Path) -> bool:
    import time

    try:
        pid_text, _, started = (stage / OWNER).read_text(encoding="ascii").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        try:
            return time.time() - stage.stat().st_mtime > ORPHAN_AGE_S
        except OSError:
            return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return bool(started) and started != _start_time(pid)  # the pid was reused by a later process


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux /proc), "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the parenthesised name


def commit(staged: Iterable[Path], target_folder: Path) -> tuple[Path, ...]:
    """Move staged files into `target_folder` under the same names, in the order given.

    Put the files that others refer to first (external data before the model, the model before
    the engine), so a reader never sees a reference to a file that is not there yet.
    """
    placed = []
    for src in staged:
        dest = target_folder / src.name
        with atomic_path(dest) as tmp:
            os.replace(src, tmp)
        placed.append(dest)
    return tuple(placed)


def tensor_bytes(model) -> int:
    """Bytes held by the model's initializers and tensor-valued Constant nodes (raw or typed)."""
    total = 0
    for init in model.graph.initializer:
        total += _one_tensor_bytes(init)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                total += _one_tensor_bytes(attr.t)
    return total


def _one_tensor_bytes(tensor) -> int:
    if tensor.raw_data:
        return len(tensor.raw_data)
    return tensor.ByteSize()


def save_onnx(model, path: Path, threshold: int = DEFAULT_EXTERNAL_DATA_THRESHOLD) -> tuple[Path, ...]:
    """Save `model` to `path`; weights go to `<name>.data` beside it when over `threshold` bytes.

    Returns the files written, external data first. The location stored in the model is the bare
    file name, so the pair can be moved together and never points outside its folder.
    """
    import onnx

    if tensor_bytes(model) <= threshold:
        onnx.save_model(model, str(path))
        return (path,)
    data = path.with_name(path.name + EXTERNAL_DATA_SUFFIX)
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024, convert_attribute=True)
    return (data, path)
