"""Errors that the CLI turns into one line and a documented exit code.

Exit codes (ARCHITECTURE.md): 0 done; 1 a check failed (latency budget, parity, accuracy
target); 2 usage; 3 invalid or unsafe input; 4 resource limit (memory, time, disk);
5 a runtime crashed; 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID_INPUT = 3
EXIT_RESOURCE = 4
EXIT_RUNTIME_CRASH = 5
EXIT_INTERRUPTED = 130


class EffconvError(Exception):
    """Base error: `str(err)` is the one line the user sees; `exit_code` is what the CLI returns."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(EffconvError):
    """Bad option, unknown name, missing optional dependency (exit 2)."""

    exit_code = EXIT_USAGE


class InvalidInputError(EffconvError):
    """A file that is not what it claims, or is unsafe to read (exit 3)."""

    exit_code = EXIT_INVALID_INPUT


class CheckFailedError(EffconvError):
    """A check the user asked for did not pass: parity, latency budget, accuracy (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


class ResourceLimitError(EffconvError):
    """Memory, time or disk ran out (exit 4)."""

    exit_code = EXIT_RESOURCE


class RuntimeCrashError(EffconvError):
    """A native runtime (onnx, ONNX Runtime, TensorRT, torch) crashed or failed (exit 5)."""

    exit_code = EXIT_RUNTIME_CRASH


class Interrupted(EffconvError):
    """The user pressed Ctrl-C; whatever could be saved was saved (exit 130)."""

    exit_code = EXIT_INTERRUPTED


# What an OSError means, by errno: (exit code, the cause in words). Output-path errors are usage
# errors (the user picks another path); a full disk or quota is a resource limit.
def _os_causes() -> dict[int, tuple[int, str]]:
    import errno as e

    return {
        e.ENOSPC: (EXIT_RESOURCE, "no space left on the device"), e.EDQUOT: (EXIT_RESOURCE, "disk quota exceeded"),
        e.EFBIG: (EXIT_RESOURCE, "file too large for the file system"), e.ENOMEM: (EXIT_RESOURCE, "out of memory"),
        e.EMFILE: (EXIT_RESOURCE, "too many open files"), e.EROFS: (EXIT_USAGE, "read-only file system"),
        e.EACCES: (EXIT_USAGE, "permission denied"), e.EPERM: (EXIT_USAGE, "operation not permitted"),
        e.ENOENT: (EXIT_USAGE, "no such file or folder"), e.ENOTDIR: (EXIT_USAGE, "not a folder"),
        e.EISDIR: (EXIT_USAGE, "is a folder"), e.ENAMETOOLONG: (EXIT_USAGE, "file name too long"),
        e.EEXIST: (EXIT_USAGE, "already exists"), e.EXDEV: (EXIT_USAGE, "cannot move across file systems"),
    }


_MEMORY_TEXT = ("out of memory", "can't allocate memory", "std::bad_alloc", "cannot allocate memory")


def from_exception(exc: BaseException) -> EffconvError | None:
    """The EffconvError an exception from a library stands for, by its cause (None: no known one):
    an OSError by errno, MemoryError or a runtime's out-of-memory error -> exit 4, OverflowError -> 3."""
    if isinstance(exc, OSError) and exc.errno in _os_causes():
        code, why = _os_causes()[exc.errno]
        cls = {EXIT_RESOURCE: ResourceLimitError, EXIT_USAGE: UsageError}[code]
        return cls(why, path=exc.filename)
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in _MEMORY_TEXT)):
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return ResourceLimitError(f"out of memory ({type(exc).__name__}{': ' + first if first else ''}); "
                                  "use a smaller batch or input")
    if isinstance(exc, OverflowError):
        return InvalidInputError(f"a number is too large to handle ({exc})")
    return None
