"""Run fuzz inputs through `effconv profile` in a worker process and classify what happened.

The worker (a spawned interpreter) calls `effconv.cli.main(["profile", FILE, ..., "--json", OUT])`
in-process with stdout/stderr captured, for input after input: the CLI's own entry point, minus a
process start per input. When a native crash kills the worker, the harness (the parent) records the
input and starts a new worker; the parent itself never runs the untrusted parse.

Each outcome: exit code, whether stderr held a Traceback, whether the error was an unexpected Python
exception (main's catch-all: "rerun with --debug"), whether out.json was left on failure or missing
on success, and the first stderr line.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ALLOWED_CODES = frozenset({0, 1, 2, 3, 4, 5})
ORT_TIMEOUT_S = 15  # the shape oracle's ONNX Runtime run (tiny inputs): longer is reported as an ORT hang
WORKER_MEM_MB = 2048  # RLIMIT_AS of the worker: a runaway allocation fails instead of swapping


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: the worker died (signal given in `signal`)
    traceback: bool
    internal: bool  # an exception that is not an EffconvError reached main's catch-all
    json_wrong: bool  # out.json present after a failure, or absent after success
    line: str  # first line of stderr (or the reason the worker died)
    signal: int | None = None
    # structured fuzzing (tests/fuzz/oracles.py): reached, handlers, folds, fold_findings, ort
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code in ALLOWED_CODES and not self.traceback and not self.json_wrong


def _set_worker_limits() -> None:
    import resource

    nbytes = WORKER_MEM_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))


def prepare_folder(folder: Path) -> None:
    """What external-data references in the inputs may point at: a real weights file, a symlink
    leaving the folder, a sparse 3 GiB file (no disk used) and a file outside the folder."""
    src = Path(__file__).resolve().parent / "corpus" / "weights.bin"
    (folder / "weights.bin").write_bytes(src.read_bytes())
    outside = folder.parent / f"{folder.name}-outside.bin"
    outside.write_bytes(b"\0" * 64)
    if not (folder / "link.bin").exists():
        (folder / "link.bin").symlink_to(outside)
    with open(folder / "sparse.bin", "wb") as fh:
        fh.truncate(3 << 30)


def run_one(data: bytes, folder: Path, args: tuple[str, ...] = ("--batch", "1")) -> Outcome:
    """Profile `data` as FILE in `folder` through the CLI entry point, in this process.

    --no-isolate: the worker is already the sandbox (a daemon process, which may not start the CLI's
    own child), and one parse per input keeps the fuzzer at tens of inputs a second; the isolated
    path is checked against this one in tests/safety/test_profile_isolation.py."""
    from effconv.cli import main

    path, out = folder / "fuzz.onnx", folder / "out.json"
    path.write_bytes(data)
    out.unlink(missing_ok=True)
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            main(["profile", str(path), "--no-latency", "--no-isolate", *args, "--json", str(out)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    text = err.getvalue()
    present = out.exists()
    return Outcome(
        code=code,
        traceback="Traceback" in text or "Traceback" in std.getvalue(),
        internal="rerun with --debug" in text,
        json_wrong=present != (code == 0),
        line=(text.strip().splitlines() or [""])[0][:300],
    )


def _worker(conn) -> None:
    _set_worker_limits()
    with tempfile.TemporaryDirectory(prefix="effconv-fuzz-") as tmp:
        folder = Path(tmp) / "m"
        folder.mkdir()
        prepare_folder(folder)
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            data, args, *rest = job
            opts = rest[0] if rest else {}
            if opts.get("hooks"):
                import oracles  # tests/fuzz/oracles.py (sys.path comes from the parent)

                oracles.install()
                oracles.HITS.reset()
            o = run_one(data, folder, args)
            extra = {}
            if opts.get("hooks"):
                h = oracles.HITS
                extra = {"reached": h.reached, "handlers": sorted(h.handlers), "folds": sorted(h.folds),
                         "fold_findings": list(h.fold_findings)}
            conn.send((o.code, o.traceback, o.internal, o.json_wrong, o.line, extra))
            if opts.get("ort") and o.code == 0:  # after the answer: an ORT crash is not effconv's
                try:
                    result = oracles.ort_check(data, folder / "out.json")
                except Exception as exc:  # noqa: BLE001 (the oracle's own failure, reported as such)
                    result = {"status": f"oracle error {type(exc).__name__}: {str(exc)[:200]}"}
                conn.send(result)


class Worker:
    """A long-lived spawned worker; `run` restarts it after a crash and reports the crash."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self.conn, child = self._ctx.Pipe()
        self.proc = self._ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, data: bytes, args: tuple[str, ...] = ("--batch", "1"), timeout_s: float = 60,
            opts: dict | None = None) -> Outcome:
        """`opts`: {"hooks": True} records coverage (tests/fuzz/oracles.py); {"ort": True} then
        compares output shapes with ONNX Runtime after a profile (an ORT crash or hang restarts
        the worker and is reported in extra["ort"], not as the input's outcome)."""
        try:
            self.conn.send((data, args, opts) if opts else (data, args))
        except OSError:  # the worker died after the previous input (e.g. killed from outside)
            return self._died(timeout_s)
        if self.conn.poll(timeout_s):
            try:
                got = self.conn.recv()
            except (EOFError, OSError):  # the worker died mid-answer (reset connection)
                return self._died(timeout_s)
            out = Outcome(*got[:5], extra=got[5] if len(got) > 5 else {})
            if opts and opts.get("ort") and out.code == 0:
                out.extra["ort"] = self._ort_answer(min(timeout_s, ORT_TIMEOUT_S))
            return out
        return self._died(timeout_s)

    def _ort_answer(self, timeout_s: float) -> dict:
        if self.conn.poll(timeout_s):
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass
        died = self._died(timeout_s)
        return {"status": f"ORT check: {died.line}"}

    def _died(self, timeout_s: float) -> Outcome:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        code = self.proc.exitcode
        self._start()
        sig = -code if code is not None and code < 0 else None
        reason = f"worker died (signal {sig})" if sig else f"worker exited {code} or hung over {timeout_s:g} s"
        return Outcome(None, False, False, False, reason, sig)

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def cli_args(r) -> tuple[str, ...]:
    """Vary the options the way users do: batch or not, strict or not, all-op convention."""
    args = []
    if r.random() < 0.8:
        args += ["--batch", "1"]
    if r.random() < 0.2:
        args.append("--strict")
    if r.random() < 0.2:
        args += ["--convention", "all"]
    args.append("--quiet" if r.random() < 0.7 else "--no-layers")
    return tuple(args)

