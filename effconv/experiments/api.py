"""The experiments' one API, what `effconv experiment plan | run | report` call: `plan` (measure
and predict, train nothing), `run` (train: the plain runner, or packed within a time budget) and
`report`. A request is an `ExperimentRequest`.

Which runner: one study with --pack 1 and no --budget-s trains its runs one after the other with
effconv.training.api (effconv.experiments.runner.run_experiment, as before packing existed);
anything else (several studies, --pack N > 1, a budget) goes through the plan: the distinct runs
(effconv.experiments.plan), their rates measured on this device (effconv.experiments.probe),
visits that fit the budget, and the first visit trained packed (effconv.experiments.pack). A
later call plans again from what the folders hold: finished runs are skipped, cut ones resumed,
so calls in turn work through the visits.

Time: a budget counts from the start of `run`, data loading and the probe included. A plan with
runs that no visit holds is refused (ResourceLimitError, exit 4: a time limit) before any run
folder is written, unless `allow_over_budget`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from effconv.errors import ResourceLimitError, UsageError
from effconv.experiments.plan import Plan, Rates, distinct_jobs, make_plan, over_budget_line
from effconv.experiments.studies import EXPERIMENTS, RunOptions, get_experiment

if TYPE_CHECKING:
    from effconv.experiments.pack import JobEnd
    from effconv.experiments.runs import RunSummary
    from effconv.training.api import TrainData

ALL = "all"
RESERVE_MARGIN_S = 0.5  # kept back at the deadline beyond the open runs' measured checkpoint times


@dataclass(frozen=True)
class ExperimentRequest:
    names: tuple[str, ...]  # studies (see `studies`: "all" is every one)
    out: Path | None = None  # one study: its runs' folder; several: their parent (default runs/experiments)
    data: Path | None = None  # CIFAR-10 source (None: --data's default search)
    options: RunOptions = field(default_factory=RunOptions)
    pack: int = 1  # runs trained at once
    budget_s: float | None = None  # seconds this call may take, start-up and probe included
    allow_over_budget: bool = False
    probe_s: float = 1.0  # timed seconds per distinct model (and for the pack)

    def __post_init__(self) -> None:
        if not self.names:
            raise UsageError("name at least one experiment, or all")
        for name in self.names:
            get_experiment(name)
        if self.pack < 1:
            raise UsageError(f"--pack must be >= 1, got {self.pack}")
        if self.budget_s is not None and not self.budget_s > 0:
            raise UsageError(f"--budget-s must be > 0, got {self.budget_s}")
        if not self.probe_s > 0:
            raise UsageError(f"--probe-s must be > 0, got {self.probe_s}")

    @property
    def packed(self) -> bool:
        return len(self.names) > 1 or self.pack > 1 or self.budget_s is not None

    def folders(self) -> dict[str, Path]:
        if len(self.names) == 1:
            return {self.names[0]: self.out or Path("runs") / "experiments" / self.names[0]}
        root = self.out or Path("runs") / "experiments"
        return {name: root / name for name in self.names}


def studies(name: str) -> tuple[str, ...]:
    """The studies a NAME argument means: one, or all four for "all"."""
    return tuple(EXPERIMENTS) if name == ALL else (name,)


@dataclass(frozen=True)
class RunOutcome:
    summaries: dict[str, list["RunSummary"]]  # study -> its runs as the folders now hold them
    plan: Plan | None = None  # None: the plain runner
    ends: tuple["JobEnd", ...] = ()  # how each run of the visit ended
    copied: tuple[str, ...] = ()  # folders given a twin's finished run
    setup_s: float = 0.0  # data loading and the probe
    train_s: float = 0.0  # the visit, measured (compare plan.visits[0].predicted_s)


def plan(request: ExperimentRequest, *, data: "TrainData | None" = None, rates: Rates | None = None) -> Plan:
    """Measure (unless `rates` are given) and split into visits; trains nothing."""
    return _plan(request, data, rates, time.monotonic(), time.monotonic)[0]


def refuse_over_budget(request: ExperimentRequest, result: Plan) -> None:
    """ResourceLimitError (exit 4) when runs fit no visit and over-budget runs were not allowed."""
    if result.over_budget and not request.allow_over_budget:
        raise ResourceLimitError(over_budget_line(result, request.budget_s))


def run(
    request: ExperimentRequest, *, data: "TrainData | None" = None, rates: Rates | None = None,
    clock: Callable[[], float] = time.monotonic, on_end: Callable[["JobEnd"], None] | None = None,
    on_round: Callable[[int], None] | None = None, on_plan: Callable[[Plan], None] | None = None,
    on_run=None, on_step=None,
) -> RunOutcome:
    """Train what `request` asks (module doc); `on_plan` hears the plan before training starts,
    `on_end`/`on_round` the pack's progress, `on_run`/`on_step` the plain runner's."""
    from effconv.experiments.report import load_runs

    t0 = clock()
    if not request.packed:
        from effconv.experiments.runner import run_experiment

        name, folder = next(iter(request.folders().items()))
        runs = run_experiment(name, request.options, folder, data=data, data_source=request.data,
                              on_run=on_run, on_step=on_step)
        return RunOutcome({name: runs}, train_s=clock() - t0)
    result, data, ready = _plan(request, data, rates, t0, clock)
    refuse_over_budget(request, result)
    if on_plan is not None:
        on_plan(result)
    if result.visits and data is None:
        from effconv.training.api import load_train_data

        data = load_train_data(request.data)
    copied = _copy(ready)
    t1 = clock()
    ends = _train_visit(request, result, data, t0, clock, on_end, on_round) if result.visits else []
    train_s = clock() - t1
    copied += _copy([(j.item.run_dir, n, p) for j in result.jobs for n, p in j.copies
                     if any(e.name == j.name and e.status == "complete" for e in ends)])
    summaries = {name: load_runs(name, folder) for name, folder in request.folders().items() if _all_there(name, folder)}
    return RunOutcome(summaries, result, tuple(ends), tuple(copied), t1 - t0, train_s)


def report(name: str, out: Path | None, report_dir: Path, *, costs: bool = True, note: str = ""):
    """Write reports/NAME.md (effconv.experiments.report.write_report); (report, path)."""
    from effconv.experiments.report import write_report

    folder = out if out is not None else Path("runs") / "experiments" / name
    report_dir.mkdir(parents=True, exist_ok=True)
    return write_report(name, folder, report_dir, costs=costs, note=note)


# The packed path ------------------------------------------------------------------------------------
def _plan(request: ExperimentRequest, data, rates: Rates | None, t0: float, clock):
    """(plan, data, ready copies); folder checks come before the data is read or anything runs,
    and with `rates` given nothing is read or measured."""
    jobs, done, ready = distinct_jobs(request.names, request.options, request.folders())
    if rates is None and jobs:
        rates, data = _measure(request, jobs, data)
    rates = rates or Rates({}, 1.0, 1, "")
    reserve = RESERVE_MARGIN_S + request.pack * max((r.eval_s + r.close_s for r in rates.models.values()), default=0.0)
    usable = None
    if request.budget_s is not None:
        usable = request.budget_s - (clock() - t0) - reserve
    plan_ = make_plan(jobs, done, rates, request.pack, usable, reserve_s=reserve, allow_over_budget=request.allow_over_budget)
    return plan_, data, ready


def _measure(request: ExperimentRequest, jobs, data):
    """(rates, data): the data read if need be, every distinct model probed on this device."""
    from effconv.experiments.probe import probe
    from effconv.experiments.runner import torch_threads

    with torch_threads(request.options.threads):
        if data is None:
            from effconv.training.api import load_train_data

            data = load_train_data(request.data)
        return probe(jobs, data, request.options, request.pack, request.probe_s), data


def _train_visit(request, result: Plan, data, t0: float, clock, on_end, on_round) -> list["JobEnd"]:
    from effconv.experiments.pack import train_packed
    from effconv.experiments.runner import pack_job, torch_threads, write_pack_meta

    visit = result.visits[0]
    by_name = {j.name: j for j in visit.jobs}

    def ended(end: "JobEnd") -> None:
        job = by_name[end.name]
        rate = result.rates.models.get(job.model)
        write_pack_meta(job, end, request.options, {"slots": request.pack, "probe_alone_seconds_per_step": rate and rate.alone_s,
                                                     "probe_factor": result.rates.factor, "device": result.rates.device})
        if on_end is not None:
            on_end(end)

    deadline = t0 + request.budget_s if request.budget_s is not None else None
    with torch_threads(request.options.threads):
        return train_packed([pack_job(j, data, request.options) for j in visit.jobs], request.pack, deadline=deadline,
                            reserve_s=result.reserve_s, clock=clock, on_end=ended, on_round=on_round)


def _copy(ready) -> list[str]:
    from effconv.experiments.runner import copy_run

    return [f"{name}/{item.plan.label}" for source, name, item in ready if copy_run(source, name, item)]


def _all_there(name: str, folder: Path) -> bool:
    return all((folder / r.label / "config.json").is_file() for r in get_experiment(name).runs)
