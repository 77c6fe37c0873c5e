"""`effconv experiment list | plan | run | report` (the paper's four studies) and `effconv compare RUN...`.

Thin: parse, call effconv.experiments.api (plan, run, report; compare reads runs directly), render with rich.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import CsvOut, JsonOut, Quiet, app, console, err_console
from effconv.io import write_text
from effconv.tables import Table, show

experiment_app = typer.Typer(help="The paper's experiments (section VII): list, run, report.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")

Name = Annotated[str, typer.Argument(help="kernel-size, optimizer, activation, batch-norm, or all (run and plan).")]
OutDir = Annotated[Optional[Path], typer.Option("--out", file_okay=False, help=(
    "Runs folder (default runs/experiments/NAME); with all, the folder of the four studies' folders (default runs/experiments)."))]
Scale = Annotated[float, typer.Option("--scale", help="Fraction (0-1] of the paper's steps; the training subset shrinks with it.")]
Data = Annotated[Optional[Path], typer.Option("--data", help="CIFAR-10: JPEG .tar.xz, ImageFolder tree, or official python folder/.tar.gz.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
WidthMult = Annotated[float, typer.Option("--width-mult", help="CI/CPU smoke runs only: narrow every layer by this factor (not the paper's models).")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Override the spec's batch size.")]
Evals = Annotated[int, typer.Option("--evals", help="Test evaluations per run.")]
EvalImages = Annotated[Optional[int], typer.Option("--eval-images", help="Test images per evaluation (default: all at scale 1, else max(500, 10000 x scale)).")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (1 is fastest on a busy machine).")]
Precision = Annotated[Optional[str], typer.Option("--precision", help="fp32, bf16 or fp16 autocast (default: the spec's, fp32); bf16 on a GPU.")]
Deterministic = Annotated[bool, typer.Option("--deterministic", help="torch's deterministic algorithms (a pack then gives the runs' metrics alone exactly, on CPU).")]
Pack = Annotated[int, typer.Option("--pack", help="Runs trained at once on the device (CUDA: a stream and a CUDA graph each).")]
BudgetS = Annotated[Optional[float], typer.Option("--budget-s", help=(
    "Seconds this call may take, start-up and probe included: the plan's first visit that fits is trained, whole runs only; "
    "runs the budget cannot hold are refused with exit 4 (see --allow-over-budget)."))]
AllowOver = Annotated[bool, typer.Option("--allow-over-budget", help="Train runs longer than a visit anyway, until the budget cuts them (they stop with their metrics and last.pt).")]
ProbeS = Annotated[float, typer.Option("--probe-s", help="Timed seconds per distinct model (and once for the pack) when planning.")]


def _request(name, out, data, pack, budget_s, allow_over_budget, probe_s, **options):
    from effconv.experiments.api import ExperimentRequest, studies
    from effconv.experiments.studies import RunOptions

    return ExperimentRequest(studies(name), out, data, RunOptions(**options), pack, budget_s, allow_over_budget, probe_s)


@experiment_app.command("list")
def list_command() -> None:
    """List the experiments, their runs and the paper's claims.

    Example: effconv experiment list
    """
    from effconv.experiments.studies import EXPERIMENTS

    table = Table("", [(c, "left") for c in ("experiment", "runs (label = spec)", "claims")])
    for exp in EXPERIMENTS.values():
        runs = "\n".join(f"{r.label} = {r.spec}" for r in exp.runs)
        table.add_row(exp.name, runs, "\n".join(c.text for c in exp.claims))
        table.add_section()
    show([table], console)


@experiment_app.command("plan")
def plan_command(
    name: Name, scale: Scale = 1.0, out: OutDir = None, data: Data = None, device: Device = "auto",
    width_mult: WidthMult = 1.0, batch_size: BatchSize = None, evals: Evals = 20, eval_images: EvalImages = None,
    threads: Threads = None, precision: Precision = None, deterministic: Deterministic = False, pack: Pack = 1,
    budget_s: BudgetS = None, allow_over_budget: AllowOver = False, probe_s: ProbeS = 1.0,
) -> None:
    """Measure each distinct model on this device, predict the plan's wall time, split it into visits; train nothing.

    Exit 4 when runs fit no visit of --budget-s (unless --allow-over-budget).

    Example: effconv experiment plan all --pack 11 --budget-s 480 --precision bf16
    """
    from effconv.experiments import api

    request = _request(name, out, data, pack, budget_s, allow_over_budget, probe_s, scale=scale, width_mult=width_mult,
                       evals=evals, eval_images=eval_images, batch_size=batch_size, device=device, threads=threads,
                       precision=precision, deterministic=deterministic)
    result = api.plan(request)
    show(_plan_items(result, request), console)
    api.refuse_over_budget(request, result)


@experiment_app.command("run")
def run_command(
    name: Name, scale: Scale = 1.0, out: OutDir = None, data: Data = None, device: Device = "auto",
    width_mult: WidthMult = 1.0, batch_size: BatchSize = None, evals: Evals = 20, eval_images: EvalImages = None,
    threads: Threads = None, precision: Precision = None, deterministic: Deterministic = False, pack: Pack = 1,
    budget_s: BudgetS = None, allow_over_budget: AllowOver = False, probe_s: ProbeS = 1.0, quiet: Quiet = False,
) -> None:
    """Train every run of an experiment (finished runs are skipped, partial ones resumed).

    One study, --pack 1, no --budget-s: one run after the other. Otherwise planned (see plan) and the first visit
    trained --pack at a time; call again for the next. Exit 4 when runs fit no visit (unless --allow-over-budget).

    Example: effconv experiment run kernel-size --scale 0.01 --out runs/experiments/kernel-size

    On a GPU: effconv experiment run all --pack 11 --budget-s 480 --precision bf16
    """
    from effconv.experiments import api

    request = _request(name, out, data, pack, budget_s, allow_over_budget, probe_s, scale=scale, width_mult=width_mult,
                       evals=evals, eval_images=eval_images, batch_size=batch_size, device=device, threads=threads,
                       precision=precision, deterministic=deterministic)
    with _RunProgress(quiet) as progress:
        outcome = api.run(request, on_run=progress.on_run, on_step=progress.on_step, on_plan=progress.on_plan,
                          on_round=progress.on_round, on_end=progress.on_end)
    if not quiet:
        show([_runs_table(r) for r in outcome.summaries.values()] + _outcome_lines(outcome, request), console)


def _plan_items(plan, request) -> list:
    from effconv.experiments.plan import alone_work

    table = Table("", [(h, "left" if h in ("run", "model") else "right")
                       for h in ("run", "model", "steps left", "evals", "ms/step alone", "s alone", "visit")])
    visit_of = {j.name: i for i, v in enumerate(plan.visits, 1) for j in v.jobs}
    for job in sorted(plan.jobs, key=lambda j: visit_of.get(j.name, 0)):
        rate = plan.rates.models[job.model]
        table.add_row(job.name, job.model, f"{job.steps_left:,}", str(job.evals_left), f"{1e3 * rate.alone_s:.2f}",
                      f"{alone_work(job, plan.rates):,.1f}", str(visit_of.get(job.name, "over budget")))
    r = plan.rates
    lines = [f"device: {r.device}; probe {r.probe_s:.1f} s; packing factor {r.factor:.3f} with {r.together} runs at once"
             f" ({1 / r.factor:.2f}x the steps/s of one at a time)" if r.models else "nothing to train"]
    if plan.usable_s is not None:
        lines.append(f"budget {request.budget_s:g} s a visit: {plan.usable_s:,.1f} s of training after set-up, "
                     f"{plan.reserve_s:.1f} s kept for the final checkpoints")
    lines += [f"visit {i}: {len(v.jobs)} runs, predicted {v.predicted_s:,.1f} s" + (" (the budget cuts it)" if v.over_budget else "")
              for i, v in enumerate(plan.visits, 1)]
    if plan.done:
        lines.append(f"complete already: {', '.join(plan.done)}")
    return ([table] if plan.jobs else []) + lines


def _outcome_lines(outcome, request) -> list[str]:
    folders = ", ".join(str(f) for f in request.folders().values())
    lines = [f"runs: {folders}; report: effconv experiment report NAME --out FOLDER"]
    plan = outcome.plan
    if plan is not None and plan.visits:
        v = plan.visits[0]
        lines.insert(0, f"visit 1 of {len(plan.visits)}: {len(v.jobs)} runs, predicted {v.predicted_s:,.1f} s, measured "
                        f"{outcome.train_s:,.1f} s of training (+{outcome.setup_s:,.1f} s of data and probe)")
        if len(plan.visits) > 1:
            lines.insert(1, f"{len(plan.visits) - 1} more visits planned: run the same command again for each")
    lines += [e.describe() for e in outcome.ends if e.status != "complete"]
    return lines + ([f"the same runs copied into: {', '.join(outcome.copied)}"] if outcome.copied else [])


class _RunProgress:
    """One rich progress display: the plain runner's current run, or the pack's steps over all runs."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.task = quiet, None, None

    def __enter__(self) -> "_RunProgress":
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=err_console.real)
            self.bar.start()
        return self

    def on_run(self, planned, index: int) -> None:
        if self.bar is None:
            return
        label = f"run {index + 1}: {planned.plan.label}"
        if self.task is not None:
            self.bar.remove_task(self.task)
        state = " (done)" if planned.complete else f" (resuming at {planned.done_steps})" if planned.done_steps else ""
        self.bar.console.print(f"{label} = {planned.spec.name}, {planned.config.steps} steps{state}", highlight=False)
        self.task = self.bar.add_task(label, total=planned.config.steps, completed=planned.done_steps)

    def on_step(self, step: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=step)

    def on_plan(self, plan) -> None:
        if self.bar is None or not plan.visits:
            return
        visit = plan.visits[0]
        self.bar.console.print(f"visit 1 of {len(plan.visits)}: {', '.join(j.name for j in visit.jobs)}; "
                               f"predicted {visit.predicted_s:,.1f} s", highlight=False)
        self.task = self.bar.add_task("steps, all runs", total=sum(j.steps_left for j in visit.jobs))

    def on_round(self, steps: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, steps)

    def on_end(self, end) -> None:
        if self.bar is not None:
            self.bar.console.print(end.describe(), highlight=False)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


@experiment_app.command("report")
def report_command(
    name: Name,
    out: OutDir = None,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="Where NAME.md and its PNG figures go.", file_okay=False)] = Path("reports"),
    costs: Annotated[bool, typer.Option("--costs/--no-costs", help="Weights and Mult-Adds of each run's model (exports it to ONNX).")] = True,
    note: Annotated[str, typer.Option("--note", help="A line on the measuring conditions, printed in the report.")] = "",
) -> None:
    """Write a Markdown report: each of the paper's claims beside our measurement, with a verdict.

    Example: effconv experiment report kernel-size --out runs/experiments/kernel-size --report-dir reports
    """
    from effconv.experiments import api

    report, path = api.report(name, out, report_dir, costs=costs, note=note)
    table = Table("", [(c, "left") for c in ("paper's claim", "our measurement", "verdict")])
    for text, finding in report.findings:
        lean = f" (data alone: {finding.leaning})" if finding.leaning else ""
        table.add_row(text, finding.measurement, finding.verdict + lean)
    show([table], console)
    console.print(f"report: {path}", highlight=False)


# effconv compare ------------------------------------------------------------------------------------
COLUMNS = ("run", "spec", "steps", "final_acc", "best_acc", "steps_to_target", "ms_per_step", "train_s",
           "wall_s", "weights", "mult_adds", "latency_ms")


@app.command("compare")
def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (written by effconv train or effconv experiment run).")],
    target: Annotated[float, typer.Option("--target", help="Accuracy for steps-to-target (0-1, or a percentage above 1).")] = 0.5,
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="Measure inference latency (ort-cpu, batch 1).")] = True,
    latency_s: Annotated[float, typer.Option("--latency-s", help="Timed seconds per model.")] = 0.5,
    plots: Annotated[Optional[Path], typer.Option("--plots", help="Folder for PNGs: test accuracy vs step and vs time, loss vs step.", file_okay=False)] = None,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
) -> None:
    """Compare training runs: accuracy, steps to a target, time, weights, Mult-Adds and latency.

    Example: effconv compare runs/experiments/kernel-size/* --target 0.6 --plots plots/
    """
    from effconv.experiments.run_costs import run_costs
    from effconv.experiments.runs import plot_runs, read_run

    target = target / 100 if target > 1 else target
    summaries = [read_run(p) for p in runs]
    rows = [_compare_row(s, run_costs(s, latency=latency, duration_s=latency_s), target) for s in summaries]
    show([_compare_table(rows, target)], console)
    if plots is not None:
        for path in plot_runs(summaries, plots, title="compare"):
            console.print(f"plot: {path}", highlight=False)
    if json_out is not None:
        write_text(json_out, json.dumps({"target": target, "runs": rows}, indent=2) + "\n")
    if csv_out is not None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(csv_out, buffer.getvalue())


def _compare_row(s, costs, target: float) -> dict:
    return {
        "run": s.label, "spec": s.spec_name, "steps": s.step, "final_acc": s.final_acc, "best_acc": s.best_acc,
        "steps_to_target": s.steps_to(target), "ms_per_step": 1e3 * s.seconds_per_step if s.seconds_per_step else None,
        "train_s": s.train_seconds, "wall_s": s.wall_seconds, "weights": costs.weights, "mult_adds": costs.mult_adds,
        "latency_ms": costs.latency_ms,
    }


def _fmt(value, kind: str) -> str:
    if value is None:
        return "n/a"
    formats = {"pct": lambda v: f"{100 * v:.2f}%", "int": lambda v: f"{v:,}", "f1": lambda v: f"{v:.1f}", "f3": lambda v: f"{v:.3f}"}
    return formats.get(kind, str)(value)


def _compare_table(rows: list[dict], target: float) -> Table:
    kinds = ("", "", "int", "pct", "pct", "int", "f1", "f1", "f1", "int", "int", "f3")
    heads = ("run", "spec", "steps", "final acc", "best acc", f"steps to {target:.0%}", "ms/step", "train s",
             "wall s", "weights", "Mult-Adds", "latency ms (ort-cpu)")
    table = Table("", [(h, "left" if h in ("run", "spec") else "right") for h in heads])
    for row in rows:
        table.add_row(*(_fmt(row[c], k) for c, k in zip(COLUMNS, kinds)))
    return table


def _runs_table(runs) -> Table:
    table = Table("", [(h, "left" if h in ("run", "spec", "status") else "right")
                       for h in ("run", "spec", "steps", "final acc", "best acc", "ms/step", "status")])
    for r in runs:
        ms = f"{1e3 * r.step_seconds:.1f}" if r.step_seconds else "n/a"  # packed: the probe's, alone
        table.add_row(r.label, r.spec_name, str(r.step), _fmt(r.final_acc, "pct"), _fmt(r.best_acc, "pct"), ms, r.status)
    return table
