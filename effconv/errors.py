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
