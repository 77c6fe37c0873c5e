"""The parent's side of the sandbox: run a function in a child process with memory and time limits, so untrusted input cannot take
the CLI down with it.

The child is forked when neither torch nor ONNX Runtime is loaded in the parent (so no native
thread pool can be copied mid-lock; a fork costs milliseconds where a fresh interpreter costs about
a second of imports), and started with "spawn" otherwise (or when EFFCONV_SPAWN=1). It sets RLIMIT_AS and RLIMIT_CPU on itself, runs the function
and sends back one JSON message: its result (which must be plain data: dict, list, str, numbers,
bool, None) or its error as class name and message. Nothing the child sends is unpickled.

Outcomes in the parent: the child's EffconvError is raised again with the same class and message;
MemoryError, a C++ std::bad_alloc, the CPU limit or the wall-clock timeout -> ResourceLimitError
(exit 4); a signal (SIGSEGV, SIGABRT, SIGBUS, ...) or any other exception -> RuntimeCrashError (exit 5).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from effconv import errors
from effconv.errors import EffconvError, ResourceLimitError, RuntimeCrashError
from effconv.sandbox import prestart
from effconv.sandbox.child import child_main
from effconv.sandbox.limits import DEFAULT_MEM_LIMIT_MB, DEFAULT_TIMEOUT_S, Limits

STDERR_TAIL = 4096  # bytes of the child's stderr kept for the error message
_MEMORY_HINTS = ("std::bad_alloc", "MemoryError", "Cannot allocate memory", "out of memory")


def run_isolated(fn: Callable, *args, mem_limit_mb: int | None = DEFAULT_MEM_LIMIT_MB,
                 timeout_s: float | None = DEFAULT_TIMEOUT_S, **kwargs) -> Any:
    """`fn(*args, **kwargs)` in a limited child process; returns its (plain-data) result.

    `fn` must be importable by name (a module-level function). See the module docstring for the
    errors raised. Example: `run_isolated(load_graph_summary, "m.onnx", mem_limit_mb=2048, timeout_s=60)`.
    """
    return run_in_child(fn, args, kwargs, Limits(mem_limit_mb, timeout_s), label=getattr(fn, "__name__", "child"))


def run_in_child(fn: Callable, args: tuple = (), kwargs: Mapping[str, Any] | None = None,
                 limits: Limits = Limits(), *, label: str = "child") -> Any:
    """Like `run_isolated`, with the limits as one value and `label` (e.g. the file) in messages.
    A worker prestarted for `fn` (effconv.sandbox.prestart) takes the job instead of a new child."""
    method = _start_method()
    worker = prestart.take(f"{fn.__module__}.{fn.__qualname__}") if method == "fork" else None
    if worker is not None:
        return _run_prestarted(worker, args, dict(kwargs or {}), limits, label)
    import multiprocessing  # ~15 ms: not needed when a prestarted worker takes the job

    ctx = multiprocessing.get_context(method)
    receiver, sender = ctx.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="effconv-sandbox-") as tmp:
        err_path = Path(tmp) / "stderr"
        proc = ctx.Process(target=child_main, daemon=True,
                           args=(sender, fn, tuple(args), dict(kwargs or {}), limits, str(err_path), os.getpid()))
        proc.start()
        sender.close()
        try:
            raw = _receive(receiver, proc, limits.timeout_s, label)
        except BaseException:  # timeout, Ctrl-C in the parent: the child must not outlive it
            _kill(proc)
            raise
        finally:
            receiver.close()
        proc.join()
        tail = _tail(err_path)
    return _outcome(raw, proc.exitcode, tail, limits, label)


def _run_prestarted(worker, args: tuple, kwargs: dict, limits: Limits, label: str) -> Any:
    """The job for a prestarted worker: plain JSON in (the arguments), the usual message out."""
    with tempfile.TemporaryDirectory(prefix="effconv-sandbox-") as tmp:
        err_path = Path(tmp) / "stderr"
        job = {"args": list(args), "kwargs": kwargs, "err_path": str(err_path),
               "mem_limit_mb": limits.mem_limit_mb, "timeout_s": limits.timeout_s, "cpu_s": limits.cpu_s}
        try:
            prestart.send(worker, job)
            raw, code = prestart.receive(worker, limits.timeout_s)
        except TimeoutError:
            raise ResourceLimitError(f"{label}: timed out after {limits.timeout_s:g} s (raise --timeout-s)") from None
        except BaseException:  # Ctrl-C in the parent: the worker must not outlive it
            prestart.discard()
            raise
        tail = _tail(err_path)
    return _outcome(raw, code, tail, limits, label)


def _outcome(raw: bytes | None, code: int | None, tail: str, limits: Limits, label: str) -> Any:
    if raw is None and code == 0:
        raw = b'{"kind": "crash", "message": "the child exited without a result"}'
    if raw is None:
        raise _from_exit(code, tail, limits, label)
    _forward(tail)
    return _decode(raw, label, limits)


def _start_method() -> str:
    """"fork" when effconv.sandbox.prestart.can_fork() (no threaded native library loaded), else "spawn"."""
    return "fork" if prestart.can_fork() else "spawn"


def _receive(receiver, proc, timeout_s: float | None, label: str) -> bytes | None:
    from multiprocessing.connection import wait

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = wait([receiver, proc.sentinel], timeout=left)
        if receiver in ready:
            try:
                return receiver.recv_bytes()
            except EOFError:  # the child died before sending
                return None
        if ready:
            return None
        if deadline is not None and time.monotonic() >= deadline:
            raise ResourceLimitError(f"{label}: timed out after {timeout_s:g} s (raise --timeout-s)")


def _kill(proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(5)


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - STDERR_TAIL))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _forward(tail: str) -> None:
    """Warnings the child printed (e.g. from onnx) still reach the user."""
    if tail.strip():
        sys.stderr.write(tail if tail.endswith("\n") else tail + "\n")


def _from_exit(code: int | None, tail: str, limits: Limits, label: str) -> EffconvError:
    last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
    detail = f" ({last[:200]})" if last else ""
    if code is not None and code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        if -code == signal.SIGXCPU:
            return ResourceLimitError(f"{label}: CPU time limit of about {limits.timeout_s:g} s reached ({sig})")
        if -code == signal.SIGKILL:
            return ResourceLimitError(f"{label}: killed ({sig}): the CPU time limit, or the system ran out of memory")
        if any(h in tail for h in _MEMORY_HINTS):
            return ResourceLimitError(f"{label}: out of memory under the {limits.mem_limit_mb} MB limit ({sig}){detail}")
        return RuntimeCrashError(f"{label}: the native code crashed with {sig} in an isolated child process{detail}")
    return RuntimeCrashError(f"{label}: the isolated child process exited with status {code}{detail}")


def _decode(raw: bytes, label: str, limits: Limits) -> Any:
    msg = json.loads(raw.decode("utf-8"))
    kind = msg.get("kind")
    if kind == "ok":
        return msg["value"]
    if kind == "effconv":
        raise rebuild_error(msg["module"], msg["qualname"], msg["message"], msg.get("path"), msg["exit_code"])
    if kind == "memory":
        raise ResourceLimitError(f"{label}: out of memory under the {limits.mem_limit_mb} MB limit (MemoryError)")
    if kind == "internal":  # a Python exception that is no EffconvError: a bug, as main's catch-all says
        raise RuntimeCrashError(f"{label}: {msg['message']} in the isolated child "
                                "(rerun with --debug --no-isolate for the traceback)")
    raise RuntimeCrashError(f"{label}: {msg.get('message', 'the isolated child failed')}")


# The parent's copy of the child's error ----------------------------------------------------------
_BY_CODE = {cls.exit_code: cls for cls in (errors.CheckFailedError, errors.UsageError, errors.InvalidInputError,
                                           errors.ResourceLimitError, errors.RuntimeCrashError, errors.Interrupted)}


def rebuild_error(module: str, qualname: str, message: str, path: str | None, exit_code: int) -> EffconvError:
    """The EffconvError subclass named by the child (looked up only among effconv's own modules),
    with the same message; an unknown name falls back to the base class with the same exit code."""
    cls = _find_class(module, qualname) or _BY_CODE.get(exit_code, errors.RuntimeCrashError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)  # str(exc) == the child's message; subclass __init__ is bypassed
    exc.path = path
    return exc


def _find_class(module: str, qualname: str) -> type[EffconvError] | None:
    if not (module == "effconv" or module.startswith("effconv.")):
        return None
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) and issubclass(obj, EffconvError) else None


def profile_onnx_isolated(path: str | Path, *, limits: Limits = Limits(), **options) -> Any:
    """effconv.profile.profile_onnx(path, **options) in a limited child; returns the ModelProfile
    rebuilt from the plain data the child sent (its JSON document, `ModelProfile.to_dict()`)."""
    from effconv.sandbox.child import profile_child

    doc = run_in_child(profile_child, (str(path),), options, limits, label=str(path))
    from effconv.profile.model import ModelProfile

    return ModelProfile.from_dict(doc, onnx_path=path)




__all__ = ["DEFAULT_MEM_LIMIT_MB", "DEFAULT_TIMEOUT_S", "Limits", "profile_onnx_isolated", "rebuild_error", "run_in_child",
           "run_isolated"]
