"""Several runs trained at once on one device (issue 19): `train_packed(jobs, slots)` keeps up to
`slots` runs open and steps them in turn, one step each per round, each in its own stream with its
own RNG (effconv.experiments.packed_trainer). On a GPU one run's replayed graph runs while the
host queues the next run's, so the rounds overlap on the device; on a CPU the same work is only
interleaved (no faster there: what CI checks on a CPU is the packing and scheduling logic).

A job opens its run (new or resumed) with effconv.training.api.open_run; a finished run closes
and its slot takes the next job. Ways a pack stops early:
- Ctrl-C or SIGTERM: every open run writes a metrics row and last.pt (Trainer.checkpoint_now),
  then Interrupted (exit 130) names them; a later call resumes each exactly.
- the deadline (a time budget): every open run checkpoints the same way and ends "cut", with the
  step it reached; jobs not started end "not started".
- a non-finite loss: that run ends "diverged" (its last good checkpoint kept); the others go on.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from effconv.errors import CheckFailedError, Interrupted, UsageError

if TYPE_CHECKING:
    from effconv.experiments.packed_trainer import PackedTrainer


@dataclass(frozen=True)
class Job:
    name: str  # how messages name the run ("kernel-size/5x5")
    open: Callable[[], AbstractContextManager["PackedTrainer"]]  # effconv.training.api.open_run(...)


@dataclass(frozen=True)
class JobEnd:
    name: str
    status: str  # complete | diverged | cut | interrupted | failed | not started
    step: int  # steps trained when it closed (0: not started)
    total: int
    wall_s: float  # from its open to its close
    graph: str = ""  # "cuda graph", or why the step was not one
    error: str = ""

    def describe(self) -> str:
        if self.status in ("cut", "interrupted"):
            why = "cut by the time budget" if self.status == "cut" else "interrupted"
            return (f"{self.name}: {why} at step {self.step:,} of {self.total:,} ({100 * self.step / max(self.total, 1):.1f}%);"
                    " metrics and last.pt written, the next call resumes it")
        if self.status == "not started":
            return f"{self.name}: not started (no time left in the budget)"
        return f"{self.name}: {self.status} at step {self.step:,} of {self.total:,}" + (f" ({self.error})" if self.error else "")


@dataclass
class _Open:
    job: Job
    cm: AbstractContextManager
    trainer: "PackedTrainer"
    t0: float


def train_packed(
    jobs: Iterable[Job], slots: int, *, deadline: float | None = None, reserve_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic, on_end: Callable[[JobEnd], None] | None = None,
    on_round: Callable[[int], None] | None = None,
) -> list[JobEnd]:
    """Train `jobs`, up to `slots` at a time, in rounds of one step each; stop every open run
    cleanly once `clock() + reserve_s` reaches `deadline` (seconds on `clock`). `on_end` hears of
    each run as it closes; `on_round(steps)` after every round (steps: trained in it)."""
    import torch

    from effconv.training.runtime import StopFlag, restore_switches

    if slots < 1:
        raise UsageError(f"--pack must be >= 1, got {slots}")
    queue, active, ends = deque(jobs), [], []
    switches = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)

    def close(run: _Open, status: str, error: str = "", exc_info=(None, None, None)) -> None:
        active.remove(run)
        try:
            with run.trainer.turn():
                run.trainer.end()
        finally:
            run.cm.__exit__(*exc_info)
            gc.collect()  # the closed run's model, optimizer and data (a trainer is a reference cycle)
            end = JobEnd(run.job.name, status, run.trainer.step, run.trainer.total, clock() - run.t0,
                         "cuda graph" if run.trainer.graphed else (run.trainer.graph_note or ""), error)
            ends.append(end)
            if active:
                _reassert_switches(active[0].trainer)
            if on_end is not None:
                on_end(end)

    try:
        with StopFlag() as stop:
            while queue or active:
                while queue and len(active) < slots:
                    active.append(_open(queue.popleft(), clock))
                stepped = 0
                for run in list(active):
                    error = _advance(run.trainer)
                    stepped += 1
                    if error is not None:
                        close(run, "diverged", error)
                    elif run.trainer.step >= run.trainer.total:
                        close(run, "complete")
                if on_round is not None:
                    on_round(stepped)
                if stop.requested:
                    names = _stop_all(active, close, "interrupted")
                    raise Interrupted(f"interrupted; {len(names)} runs saved their progress ({', '.join(names)}); "
                                      "the same command resumes them")
                if deadline is not None and active and clock() + reserve_s >= deadline:
                    _stop_all(active, close, "cut")
                    for job in queue:
                        ends.append(JobEnd(job.name, "not started", 0, 0, 0.0))
                        if on_end is not None:
                            on_end(ends[-1])
                    break
    except BaseException as exc:
        for run in list(active):  # release every folder lock; each keeps its last checkpoint
            close(run, "failed", str(exc) or type(exc).__name__, sys.exc_info())
        raise
    finally:
        restore_switches(switches)
    return ends


def _open(job: Job, clock) -> _Open:
    t0 = clock()
    cm = job.open()
    trainer = cm.__enter__()
    trainer.begin()
    return _Open(job, cm, trainer, t0)


def _advance(trainer: "PackedTrainer") -> str | None:
    """One step of one run in its turn; the error line if its loss became non-finite."""
    with trainer.turn():
        try:
            trainer.advance()
        except CheckFailedError as exc:
            return str(exc)
    return None


def _stop_all(active: list[_Open], close, status: str) -> list[str]:
    names = []
    for run in list(active):
        with run.trainer.turn():
            try:
                run.trainer.checkpoint_now()
            except CheckFailedError as exc:
                close(run, "diverged", str(exc))
                continue
        names.append(f"{run.job.name} at step {run.trainer.step}")
        close(run, status)
    return names


def _reassert_switches(trainer: "PackedTrainer") -> None:
    """Closing a run's session put back the determinism switches of the moment it opened; the
    runs still open need theirs. seed_everything sets them (its reseeding of the global RNGs does
    not reach the open runs: each keeps its own RNG state, packed_trainer.RunRng)."""
    from effconv.training.runtime import seed_everything

    seed_everything(trainer.cfg, 0)
