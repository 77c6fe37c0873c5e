"""Atomic file writes: every output goes to a temporary file in the same folder, then is renamed
into place, so a failure never leaves a partial file or corrupts the previous version."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from effconv.errors import ResourceLimitError, UsageError

LOCKED_BY = ".effconv-owner"  # the pid of a folder lock's holder, for the refusal message


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError("output folder does not exist", path=folder)
    refuse_special(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=folder)
    except OSError as exc:  # read-only, no permission, full
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ResourceLimitError("disk full: cannot create a file", path=folder) from exc
        raise UsageError(f"output folder is not writable ({exc.strerror})", path=folder) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the output the permissions a plain open() would (0666 & ~umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise ResourceLimitError(f"disk full while writing ({exc.strerror})", path=target) from exc
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def refuse_special(target: str | Path) -> None:
    """UsageError when `target` exists as something a rename must never replace: a device
    (-o /dev/null would swap the device node for a file), a pipe, a socket or a folder."""
    import stat

    try:
        mode = os.stat(target).st_mode
    except OSError:
        return  # absent (or a dangling link): a new file
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, pipe or socket"
        raise UsageError(f"is {kind}, not a regular file: refusing to replace it", path=target)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_text(target: str | Path, text: str) -> Path:
    """Write `text` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def free_bytes(folder: str | Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `folder`."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "folder") -> Iterator[None]:
    """Hold an exclusive advisory lock (flock) on `folder` itself for the block; a second holder,
    in this process or another, gets UsageError (exit 2) at once. The kernel drops the lock when
    its holder ends however it ends (kill -9 included), so a dead process never leaves a stale
    lock: the next run simply takes it. The holder's pid is kept in a small file for the message."""
    import fcntl

    folder = Path(folder)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(folder)
            raise UsageError(f"another effconv process{owner} is writing to this {what}; wait for it to finish "
                             "or pick another --out", path=folder) from None
        owner_file = folder / LOCKED_BY
        with contextlib.suppress(OSError):
            owner_file.write_text(f"{os.getpid()}\n", encoding="ascii")
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                owner_file.unlink()
    finally:
        os.close(fd)  # releases the lock


def _read_owner(folder: Path) -> str:
    try:
        pid = int((folder / LOCKED_BY).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})"


def save_png(fig, target: str | Path, dpi: int | None = None) -> Path:
    """Write a matplotlib figure as PNG atomically (effconv.io.atomic_path), and close it whatever
    happens (an open figure holds its memory until the process ends)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", **({"dpi": dpi} if dpi else {}))
    finally:
        plt.close(fig)
    return Path(target)

