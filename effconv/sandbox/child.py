"""The child's side of the sandbox: set the limits on itself, run the function, send back one JSON
message (its plain-data result, or its error as class name and message; nothing is pickled). Used
by the forked or spawned child (`child_main`) and by the prestarted worker (`serve_job`)."""

from __future__ import annotations

import json
import os
import signal
import sys

from effconv import errors
from effconv.errors import EffconvError
from effconv.sandbox.lifetime import die_with_parent
from effconv.sandbox.limits import Limits


def child_main(sender, fn, args, kwargs, limits: Limits, err_path: str, parent_pid: int) -> None:
    die_with_parent(parent_pid)  # a kill -9 of the CLI takes this child with it
    _redirect_stderr(err_path)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills us
    _set_limits(limits)
    sender.send_bytes(_call(fn, args, kwargs))
    sender.close()


def _call(fn, args, kwargs) -> bytes:
    """Run `fn` and encode the one message the parent decodes (`_decode`)."""
    try:
        message = {"kind": "ok", "value": fn(*args, **kwargs)}
        payload = json.dumps(message, allow_nan=True)
    except EffconvError as exc:
        cls = type(exc)
        payload = json.dumps({"kind": "effconv", "module": cls.__module__, "qualname": cls.__qualname__,
                              "message": str(exc), "path": exc.path, "exit_code": exc.exit_code})
    except MemoryError:
        payload = json.dumps({"kind": "memory"})
    except Exception as exc:  # a bug or a native library's Python-level error: one line, exit 5
        mapped = errors.from_exception(exc)  # unless its cause is known: a full disk, no memory
        if mapped is not None:
            return _call(_raise, (mapped,), {})

        first = (str(exc).strip().splitlines() or [""])[0][:300]
        payload = json.dumps({"kind": "internal", "message": f"{type(exc).__name__}: {first}"})
    return payload.encode("utf-8")


def _raise(exc: BaseException):
    raise exc


def serve_job(job: dict) -> bytes:
    """In a prestarted worker (effconv.sandbox.prestart): the profile job, under the job's limits."""
    _redirect_stderr(job["err_path"])
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    _set_limits(Limits(job["mem_limit_mb"], job["timeout_s"], job.get("cpu_s")), cpu_used_s=used.ru_utime + used.ru_stime)
    return _call(profile_child, job["args"], job["kwargs"])


def _redirect_stderr(err_path: str) -> None:
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stderr.flush()
    os.dup2(fd, 2)  # native code writes to fd 2 directly (abort messages, C++ terminate)
    os.close(fd)


def _set_limits(limits: Limits, cpu_used_s: float = 0.0) -> None:
    """RLIMIT_AS and RLIMIT_CPU on this process; `cpu_used_s` (CPU already spent, e.g. importing)
    is added to the CPU limit, which counts from the process start."""
    import resource

    if limits.mem_limit_mb is not None:
        nbytes = int(limits.mem_limit_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
    cpu_s = limits.cpu_s if limits.cpu_s is not None else limits.timeout_s
    if cpu_s is not None:
        # CPU seconds: SIGXCPU at the soft limit, SIGKILL at the hard one; the parent's wall clock
        # catches sleeping or blocked children first, this catches a runaway one if the parent dies.
        soft = int(cpu_s + cpu_used_s) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))


# `effconv profile` in a child ---------------------------------------------------------------------
def profile_child(path: str, **options) -> dict:
    from effconv.profile import profile_onnx

    if options.get("input_shapes"):  # JSON from a prestarted worker's job: lists back to tuples
        options["input_shapes"] = {k: tuple(v) for k, v in options["input_shapes"].items()}
    return profile_onnx(path, **options).to_dict()
