"""The plan of a packed experiment run: which distinct runs need training, how long each visit
takes on this device, and which runs go in which visit (torch-free: arithmetic over the rates that
effconv.experiments.probe measured).

Distinct runs: the four studies name 18 runs but 13 distinct ones (VGG-19 3x3 with ReLU and batch
norm is kernel-size/3x3, activation/relu and batch-norm/relu-bn; each activation run is also a
batch-norm run). A run with the same spec and options is the same run (same seed, same recipe), so
it is trained once and its folder copied into the other studies' folders (`copies`) when it ends.
Folders that already hold progress of their own are trained (resumed) as they are.

The prediction, for one visit of `slots` concurrent runs in lockstep rounds (effconv.experiments.pack):
    wall = sum over runs of (start_s + evals x eval_s + close_s)
         + sum over rounds of max(g(k) x (sum of the alone_s of the k runs open), their largest alone_s)
where alone_s is a model's seconds per step trained alone (a round is never faster than its slowest
run alone, so a run that no visit holds alone fits no pack either), and g(k) the packing factor with k runs
open: 1 at k = 1, the measured `factor` at k = slots (round time / sum of alone_s, for the plan's
first `slots` runs trained together, measured with `together` of them), linear between. Runs are
queued longest first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from effconv.experiments.runner import PlannedRun, plan_experiment
from effconv.experiments.studies import RunOptions


@dataclass(frozen=True)
class PackJob:
    experiment: str
    item: PlannedRun
    copies: tuple[tuple[str, PlannedRun], ...] = ()  # (experiment, folder) that get this run when it ends

    @property
    def name(self) -> str:
        return f"{self.experiment}/{self.item.plan.label}"

    @property
    def model(self) -> str:
        """What the probe measures once: the spec with its [arch] overrides (the options are the plan's)."""
        arch = ",".join(f"{k}={v}" for k, v in self.item.plan.arch)
        return self.item.plan.spec + (f"[{arch}]" if arch else "")

    @property
    def steps_left(self) -> int:
        return max(0, self.item.config.steps - self.item.done_steps)

    @property
    def evals_left(self) -> int:
        """Evaluations (each with its checkpoints) still to come: every eval_every steps and at the end."""
        total, done, every = self.item.config.steps, self.item.done_steps, self.item.config.eval_every
        if done >= total:
            return 0
        return total // every - done // every + (1 if total % every else 0)


@dataclass(frozen=True)
class Rate:
    """One model measured on this device (seconds)."""

    alone_s: float  # per step, trained alone (after warm-up and capture)
    eval_s: float  # per evaluation: the metrics row, the evaluation, best.pt and last.pt
    start_s: float  # opening a run: model and data to the device, warm-up steps, the capture
    close_s: float  # closing it: curve.png, the folder lock


@dataclass(frozen=True)
class Rates:
    models: dict[str, Rate]
    factor: float  # round time of `together` runs trained at once / the sum of their alone_s (1.0: no gain)
    together: int  # how many runs the factor was measured with (the plan's first, up to --pack)
    device: str
    probe_s: float = 0.0  # seconds the probe took

    def g(self, k: int) -> float:
        """The packing factor with k runs open: 1 alone, `factor` at `together`, linear between."""
        if self.together <= 1 or k <= 1:
            return 1.0
        return 1.0 + (self.factor - 1.0) * (min(k, self.together) - 1) / (self.together - 1)


@dataclass(frozen=True)
class Visit:
    jobs: tuple[PackJob, ...]  # in queue order (longest first)
    predicted_s: float
    over_budget: bool = False  # holds runs that the budget will cut (--allow-over-budget)


@dataclass(frozen=True)
class Plan:
    jobs: tuple[PackJob, ...]  # the runs to train
    done: tuple[str, ...]  # the runs already complete
    visits: tuple[Visit, ...]
    over_budget: tuple[PackJob, ...]  # runs that no visit of the budget holds
    rates: Rates
    usable_s: float | None  # training seconds a visit may take (None: no budget)
    reserve_s: float  # kept back at the deadline for the open runs' final checkpoints

    @property
    def predicted_s(self) -> float:
        return sum(v.predicted_s for v in self.visits)


def distinct_jobs(names: tuple[str, ...], options: RunOptions, folders: dict[str, Path]):
    """(jobs to train, complete runs by name, ready copies) over the studies `names`; ready copies
    are (source folder, experiment, folder) of complete runs whose twins are still empty."""
    groups: dict[tuple, list[tuple[str, PlannedRun]]] = {}
    for name in names:
        for item in plan_experiment(name, options, folders[name]):
            groups.setdefault((item.plan.spec, item.plan.arch), []).append((name, item))
    jobs, done, ready = [], [], []
    for members in groups.values():
        fresh = [(n, p) for n, p in members if not p.complete and not p.done_steps]
        complete = [(n, p) for n, p in members if p.complete]
        jobs += [PackJob(n, p) for n, p in members if not p.complete and p.done_steps]  # resumed as they are
        done += [f"{n}/{p.plan.label}" for n, p in complete]
        if fresh and complete:
            ready += [(complete[0][1].run_dir, n, p) for n, p in fresh]
        elif fresh:
            jobs.append(PackJob(fresh[0][0], fresh[0][1], tuple(fresh[1:])))
    return jobs, done, ready


def alone_work(job: PackJob, rates: Rates) -> float:
    r = rates.models[job.model]
    return job.steps_left * r.alone_s + r.start_s + job.evals_left * r.eval_s + r.close_s


def predict_visit(jobs: list[PackJob], rates: Rates, slots: int) -> tuple[tuple[PackJob, ...], float]:
    """(queue order, predicted wall seconds) of training `jobs` together (see the module doc)."""
    order = tuple(sorted(jobs, key=lambda j: alone_work(j, rates), reverse=True))
    wall = sum(alone_work(j, rates) - j.steps_left * rates.models[j.model].alone_s for j in order)
    queue, active = deque(order), []
    while queue or active:
        while queue and len(active) < slots:
            job = queue.popleft()
            active.append([rates.models[job.model].alone_s, job.steps_left])
        rounds = min(left for _, left in active)
        wall += rounds * max(rates.g(len(active)) * sum(s for s, _ in active), max(s for s, _ in active))
        active = [[s, left - rounds] for s, left in active if left > rounds]
    return order, wall


def make_plan(jobs, done, rates: Rates, slots: int, usable_s: float | None, *, reserve_s: float = 0.0,
              allow_over_budget: bool = False) -> Plan:
    """Split `jobs` into visits that each fit `usable_s` (first fit, longest first; whole runs
    only). Runs that fit no visit are `over_budget`; with `allow_over_budget` they get visits of
    their own (`slots` at a time) after the others, where the budget will cut them."""
    if usable_s is None:
        order, wall = predict_visit(list(jobs), rates, slots) if jobs else ((), 0.0)
        return Plan(tuple(jobs), tuple(done), (Visit(order, wall),) if jobs else (), (), rates, None, reserve_s)
    bins: list[list[PackJob]] = []
    over = []
    for job in sorted(jobs, key=lambda j: alone_work(j, rates), reverse=True):
        for b in bins:
            if predict_visit(b + [job], rates, slots)[1] <= usable_s:
                b.append(job)
                break
        else:
            if predict_visit([job], rates, slots)[1] <= usable_s:
                bins.append([job])
            else:
                over.append(job)
    visits = [Visit(*predict_visit(b, rates, slots)) for b in bins]
    if allow_over_budget:
        visits += [Visit(*predict_visit(over[i:i + slots], rates, slots), over_budget=True) for i in range(0, len(over), slots)]
    return Plan(tuple(jobs), tuple(done), tuple(visits), tuple(over), rates, usable_s, reserve_s)


def over_budget_line(plan: Plan, budget_s: float) -> str:
    """The refusal: which runs no visit of the budget holds, and what each needs."""
    runs = ", ".join(f"{j.name} ({alone_work(j, plan.rates):,.0f} s alone)" for j in plan.over_budget)
    return (f"plan over budget: {runs} cannot finish within one visit of --budget-s {budget_s:g} "
            f"({plan.usable_s:,.0f} s of training after set-up and the final checkpoints); "
            "pass --allow-over-budget to train them until the budget cuts them")
