"""Functions the sandbox tests run in a child process (a module importable by name, as spawn needs)."""

from __future__ import annotations

import ctypes
import os
import signal
import time

from effconv.errors import InvalidInputError


def add(a: int, b: int, *, scale: int = 1) -> dict:
    return {"sum": (a + b) * scale, "pid": os.getpid()}


def abort() -> None:
    os.abort()  # SIGABRT, as a failed assertion in a native library


def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def bus_error() -> None:
    os.kill(os.getpid(), signal.SIGBUS)


def allocate(mb: int) -> int:
    block = bytearray(mb * 1024 * 1024)  # over RLIMIT_AS: MemoryError
    return len(block)


def native_allocate(mb: int) -> int:
    import numpy as np

    return int(np.ones(mb * 1024 * 1024 // 8).sum())


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def spin(seconds: float) -> int:
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
    return n


def invalid(path: str) -> None:
    raise InvalidInputError("is not what it claims", path=path)


def spec_error() -> None:
    from effconv.specs import SpecError

    raise SpecError("unknown key 'x' in [arch]")


def bug() -> None:
    raise KeyError("internal")


def not_plain_data() -> object:
    return object()


def exit_status(code: int) -> None:
    os._exit(code)


def noisy() -> str:
    import sys

    print("a warning from native code", file=sys.stderr)
    return "done"


def limits() -> dict:
    import resource

    return {"as": list(resource.getrlimit(resource.RLIMIT_AS)), "cpu": list(resource.getrlimit(resource.RLIMIT_CPU))}
