"""A sandbox child forked before the CLI has parsed its arguments, so that importing onnx (~0.2 s)
overlaps with importing Typer and parsing in the parent.

`effconv profile model.onnx` parses the model in a limited child process (effconv.sandbox.parent). Started
the usual way, after argument parsing, that child imports onnx and numpy while the parent waits.
`effconv.cli.main` instead calls `prestart()` first thing, when the arguments name an existing
model file and isolation is not switched off: it forks a worker (no threads exist yet, so a fork is
safe) that imports `WARM_MODULE` and then blocks on a pipe for exactly one job. When the command
reaches `effconv.sandbox.parent.run_in_child` with the prestarted function, the job goes to this worker,
which applies the limits, runs it and answers with the same JSON message a fresh child would.
A worker that is never used (a usage error, --help) is killed at exit.

Only os, select and signal are imported here (no dataclasses: it imports inspect, ~15 ms): this
runs before anything else in the CLI, and every millisecond here delays the worker.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import time
from collections.abc import Sequence

from effconv.sandbox.lifetime import die_with_parent

WARM_MODULE = "effconv.profile.core"  # what the worker imports while the parent parses
JOB = "effconv.sandbox.child.profile_child"  # the one function it runs (a test checks the name)
_HEADER = 8  # bytes: the length of each message, big-endian


class Worker:
    def __init__(self, pid: int, jobs: int, results: int) -> None:
        self.pid = pid
        self.jobs = jobs  # write end: the parent sends one job
        self.results = results  # read end: the worker's one answer
        self.used = False


_worker: Worker | None = None


def wanted(args: Sequence[str]) -> bool:
    """Prestart for `effconv profile FILE ...` (FILE an existing file, not a .toml spec), unless
    --no-isolate, --help, EFFCONV_SPAWN=1 (spawn only), no fork, or torch/onnxruntime are loaded."""
    if "profile" not in args or any(a in ("--no-isolate", "-h", "--help") for a in args) or not can_fork():
        return False
    rest = args[args.index("profile") + 1:]
    return any(not a.startswith("-") and not a.endswith(".toml") and os.path.isfile(a) for a in rest)


def can_fork() -> bool:
    """A child may be forked: fork exists, EFFCONV_SPAWN=1 is not set, and no library that starts
    native threads (torch, ONNX Runtime) is loaded, so no thread pool can be copied mid-lock."""
    if os.environ.get("EFFCONV_SPAWN") == "1" or not hasattr(os, "fork"):
        return False
    return not any(name in sys.modules for name in ("torch", "onnxruntime"))


def prestart(args: Sequence[str]) -> Worker | None:
    """Fork the worker if `wanted(args)`; returns it (also kept for `take`)."""
    global _worker
    if _worker is not None or not wanted(args):
        return _worker
    job_r, job_w = os.pipe()
    res_r, res_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        os.close(job_w)
        os.close(res_r)
        die_with_parent(parent)
        _serve(job_r, res_w)
    os.close(job_r)
    os.close(res_w)
    _worker = Worker(pid, job_w, res_r)
    atexit.register(discard)
    return _worker


def take(job: str) -> Worker | None:
    """The prestarted worker for `job` (once), or None."""
    global _worker
    w = _worker
    if w is None or w.used or job != JOB:
        return None
    w.used = True
    return w


def discard() -> None:
    """Kill and reap an unused worker (at exit, or when a command does not need it)."""
    global _worker
    w, _worker = _worker, None
    if w is None:
        return
    for fd in (w.jobs, w.results):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        os.kill(w.pid, signal.SIGKILL)
        os.waitpid(w.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def send(w: Worker, job: dict) -> None:
    import json

    data = json.dumps(job).encode("utf-8")
    try:
        _write_all(w.jobs, len(data).to_bytes(_HEADER, "big") + data)
    except BrokenPipeError:  # the worker is gone; `receive` reports how it ended
        pass
    finally:
        os.close(w.jobs)
        w.jobs = -1


def receive(w: Worker, timeout_s: float | None) -> tuple[bytes | None, int | None]:
    """(the answer or None, exit code or None). The code follows multiprocessing: -N for signal N.
    Raises TimeoutError when `timeout_s` passes first (the worker is then killed)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    buf = b""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            _kill(w)
            raise TimeoutError
        ready, _, _ = select.select([w.results], [], [], left)
        if not ready:
            continue
        chunk = os.read(w.results, 1 << 20)
        if not chunk:
            break
        buf += chunk
    os.close(w.results)
    w.results = -1
    code = _reap(w.pid)
    if len(buf) >= _HEADER and len(buf) - _HEADER == int.from_bytes(buf[:_HEADER], "big"):
        return buf[_HEADER:], code
    return None, code


def _kill(w: Worker) -> None:
    try:
        os.kill(w.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(w.pid)


def _reap(pid: int) -> int | None:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_job(fd: int) -> dict | None:
    buf = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        buf += chunk
    if len(buf) < _HEADER:
        return None  # the parent closed the pipe without a job
    import json

    return json.loads(buf[_HEADER:].decode("utf-8"))


def _serve(job_r: int, res_w: int) -> None:
    """The worker: warm up, wait for one job, answer, exit (never runs the parent's atexit)."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it kills us
        try:
            __import__(WARM_MODULE)
        except Exception:  # the job imports it again and reports the error as the child's own
            pass
        job = _read_job(job_r)
        if job is not None:
            from effconv.sandbox.child import serve_job

            payload = serve_job(job)
            _write_all(res_w, len(payload).to_bytes(_HEADER, "big") + payload)
    except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code path
        code = 70
    finally:
        os._exit(code)
