"""The throughput mode (`--mode throughput --streams N`), as benchmark_app's `-hint throughput` and
trtexec's `--streams`: N requests kept in flight, and what that load gives: inferences and items
per second, and each request's latency at that load, summarised by the same statistics code as the
latency mode (effconv.latency.base.compute_statistics).

Conventions (the latency mode's, where they apply): times in milliseconds. Warm-up ends once
`warmup_ms` have passed and at least one request per stream has completed; the timed window then
runs until BOTH at least `iterations` requests completed inside it and at least `duration_s`
seconds passed (or `max_iterations` completed), and closes at the completion that met that. A
request counts in the window when it completes inside it; its latency is from its issue (the
moment a free slot took it) to its completion (openvino: the runtime's own `request.latency`, the
same span). Requests in flight when the window closes are
waited for and not counted. Throughput = completed in the window / window length.

A backend offers the mode with a load runner (its descriptor's `throughput` factory): `prepare()`
loads N sessions or requests, `run_load(gate)` keeps N in flight while `gate.more()` and reports
each completion to `gate.done()`, then waits for every request it issued.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from effconv.errors import RuntimeCrashError
from effconv.latency.base import Timing, compute_statistics

if TYPE_CHECKING:
    from effconv.latency.base import LatencyOptions

MODES = ("latency", "throughput")


@dataclass(frozen=True)
class Load:
    """What the throughput mode measured, beside the per-request latency statistics."""

    streams: int  # requests kept in flight
    completed: int  # requests completed inside the timed window
    window_s: float
    inferences_per_s: float  # completed / window_s
    items_per_s: float  # inferences_per_s x batch
    issued: int  # every request issued (warm-up and the drain after the window included)...
    finished: int  # ...and every one that completed: equal when none was lost
    warmup_requests: int
    per_stream: tuple[int, ...]  # requests each stream (session / request slot) completed inside the window

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "per_stream": list(self.per_stream)}

    @classmethod
    def from_dict(cls, doc) -> Load:
        return cls(**{**doc, "per_stream": tuple(doc["per_stream"])})


class LoadRunner(Protocol):
    streams: int
    timer_method: str  # how a request's latency is read

    def prepare(self) -> None: ...
    def run_load(self, gate: Gate) -> None: ...
    def environment(self) -> dict[str, object]: ...


class Gate:
    """Decides when warm-up ends and the window closes, and records each completion. Thread-safe:
    ONNX Runtime's streams call it from their own threads, OpenVINO's callbacks from its."""

    def __init__(self, options: LatencyOptions, streams: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.options, self.streams, self.clock = options, streams, clock
        self._lock = threading.Lock()
        self.t0 = clock()
        self.window: list[float | None] = [None, None]  # start, end (seconds on `clock`)
        self.issued = self.finished = self.warm = 0
        self.samples_ms: list[float] = []
        self.per_stream = [0] * streams
        self.aborted = False

    def abort(self) -> None:
        """Stop issuing (a stream failed): the others finish what they issued, then the error is raised."""
        with self._lock:
            self.aborted = True

    def more(self) -> bool:
        """True while requests should be issued; counts the one the caller issues next."""
        with self._lock:
            if self.window[1] is not None or self.aborted:
                return False
            self.issued += 1
            return True

    def done(self, start: float, end: float, stream: int, *, latency_ms: float | None = None) -> None:
        """Request issued at `start` completed at `end` (seconds on `clock`) on `stream`;
        `latency_ms`: its latency as the runtime measured it (default: end - start)."""
        o = self.options
        with self._lock:
            self.finished += 1
            begin, close = self.window
            if begin is None:
                self.warm += 1
                if (end - self.t0) * 1e3 >= o.warmup_ms and self.warm >= self.streams:
                    self.window[0] = end
                return
            if close is not None or end < begin:
                return
            self.samples_ms.append((end - start) * 1e3 if latency_ms is None else latency_ms)
            self.per_stream[stream] += 1
            n = len(self.samples_ms)
            if n >= o.max_iterations or (n >= o.iterations and end - begin >= o.duration_s):
                self.window[1] = end


def time_load(runner: LoadRunner, options: LatencyOptions, *, clock: Callable[[], float] = time.perf_counter) -> Timing:
    """THE throughput loop: `runner.prepare()` must have been called."""
    gate = Gate(options, runner.streams, clock)
    runner.run_load(gate)
    begin, close = gate.window
    if gate.finished != gate.issued:
        raise RuntimeCrashError(f"the throughput run lost requests: {gate.issued} issued, {gate.finished} completed")
    if close is None:  # only when a runner stopped early: a bug, not the user's
        raise RuntimeCrashError(f"the throughput run stopped before its window closed ({gate.finished} of "
                                f"{gate.issued} requests completed)")
    window = close - begin
    n = len(gate.samples_ms)
    rate = n / window if window > 0 else float("inf")
    load = Load(runner.streams, n, window, rate, rate * options.batch, gate.issued, gate.finished, gate.warm,
                tuple(gate.per_stream))
    stats = compute_statistics(gate.samples_ms, options.batch, throughput=load.items_per_s)
    return Timing(tuple(gate.samples_ms), gate.warm, stats, runner.timer_method, load)


def available_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_threads(gate: Gate, work: Callable[[int], None]) -> None:
    """`work(i)` for each of the gate's streams, on a thread each, all at once; the first exception
    any raised stops the others (`Gate.abort`) and is raised here once all have ended."""
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            gate.abort()

    threads = [threading.Thread(target=target, args=(i,), name=f"effconv-stream-{i}", daemon=True)
               for i in range(gate.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
