"""Measure, on the device present, what effconv.experiments.plan predicts from: each distinct
model's seconds per step alone, its evaluation and its start and close, and the packing factor of
the plan's first `slots` runs trained together. Every probe run trains in a temporary folder with
the real run's recipe, data and code path (PackedTrainer), then is thrown away; no run folder of
the plan is touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from effconv.experiments.packed_trainer import WARMUP
from effconv.experiments.plan import PackJob, Rate, Rates, alone_work

if TYPE_CHECKING:
    from effconv.experiments.studies import RunOptions
    from effconv.training.api import TrainData

FOREVER = 10**9  # a probe run's steps and eval_every: it never ends or evaluates by itself
WARM_STEPS = WARMUP + 2  # steps a probe run takes before it is timed: the eager ones, the capture, a replay
MIN_STEPS = 3  # timed steps per measurement, however short --probe-s is


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def probe_run(job: PackJob, data: "TrainData", options: "RunOptions", folder: Path):
    """A run of job's model and recipe that never ends, opened and warmed up (capture included)."""
    from effconv.experiments.packed_trainer import PackedTrainer
    from effconv.experiments.studies import build_run_model
    from effconv.training.api import open_run

    config = dataclasses.replace(job.item.config, steps=FOREVER, eval_every=FOREVER)
    model = build_run_model(job.item.spec, options.width_mult, config.seed)
    with open_run(folder, job.item.spec, config, data=data, model=model, trainer=PackedTrainer) as trainer:
        trainer.begin()
        try:
            with trainer.turn():
                for _ in range(WARM_STEPS):
                    trainer.advance()
            yield trainer
        finally:
            trainer.end(plot=False)  # its graph's memory back now, not at the next garbage collection


def timed_rounds(trainers, seconds: float = 0.0, rounds: int = MIN_STEPS) -> float:
    """Seconds per round of one step of each trainer, over at least `seconds` and `rounds` rounds
    (the device synchronized before and after: what the host queued is counted)."""
    device = trainers[0].rt.device
    _sync(device)
    t0, done = time.perf_counter(), 0
    while done < rounds or time.perf_counter() - t0 < seconds:
        for trainer in trainers:
            with trainer.turn():
                trainer.advance()
        done += 1
    _sync(device)
    return (time.perf_counter() - t0) / done


def measure_model(job: PackJob, data, options, folder: Path, seconds: float) -> Rate:
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        trainer = stack.enter_context(probe_run(job, data, options, folder))
        _sync(trainer.rt.device)
        opened = time.perf_counter() - t0
        alone_s = timed_rounds([trainer], seconds)
        start_s = max(0.0, opened - WARM_STEPS * alone_s)  # the warm-up steps are steps of the run: counted there
        with trainer.turn():
            t1 = time.perf_counter()
            trainer.evaluate_now()
            _sync(trainer.rt.device)
        eval_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        with trainer.turn():
            trainer.end()
    close_s = time.perf_counter() - t2
    return Rate(alone_s=alone_s, eval_s=eval_s, start_s=start_s, close_s=close_s)


def measure_factor(jobs: list[PackJob], models: dict[str, Rate], data, options, folder: Path, seconds: float) -> float:
    """Round time of `jobs` trained together over the sum of their alone seconds per step."""
    with contextlib.ExitStack() as stack:
        trainers = [stack.enter_context(probe_run(j, data, options, folder / f"pack{i}")) for i, j in enumerate(jobs)]
        round_s = timed_rounds(trainers, seconds)
    return round_s / sum(models[j.model].alone_s for j in jobs)


def probe(jobs: list[PackJob], data: "TrainData", options: "RunOptions", slots: int, seconds: float) -> Rates:
    """Measure every distinct model of `jobs` alone for `seconds`, then (slots > 1) the first
    `slots` runs of the queue, longest first, together for `seconds`."""
    from effconv.experiments.runner import device_name

    t0 = time.perf_counter()
    models: dict[str, Rate] = {}
    with tempfile.TemporaryDirectory(prefix="effconv-probe-") as tmp:
        with probe_run(jobs[0], data, options, Path(tmp) / "warm") as trainer:
            trainer.evaluate_now()  # the process's one-time costs (imports, CUDA context, library handles, the
            trainer.end()  # plotting library): paid once, before anything is timed, as the real runs do not pay them
        for job in jobs:
            if job.model not in models:
                models[job.model] = measure_model(job, data, options, Path(tmp) / f"m{len(models)}", seconds)
        factor, together = 1.0, 1
        if slots > 1 and len(jobs) > 1:
            first = Rates(models, 1.0, 1, "")
            head = sorted(jobs, key=lambda j: alone_work(j, first), reverse=True)[:slots]
            factor, together = measure_factor(head, models, data, options, Path(tmp), seconds), len(head)
    gc.collect()  # the probe runs' models and data (a trainer is a reference cycle: its objective holds it)
    return Rates(models, factor, together, device_name(options.device), time.perf_counter() - t0)
