"""`effconv experiment list | run | report` (the paper's four studies) and `effconv compare RUN...`.

Thin: parse, call effconv.experiments (runner, report, runs), render with rich.
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

Name = Annotated[str, typer.Argument(help="kernel-size, optimizer, activation or batch-norm.")]
OutDir = Annotated[Optional[Path], typer.Option("--out", help="Runs folder (default runs/experiments/NAME).", file_okay=False)]


def _out(name: str, out: Path | None) -> Path:
    return out if out is not None else Path("runs") / "experiments" / name


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


@experiment_app.command("run")
def run_command(
    name: Name,
    scale: Annotated[float, typer.Option("--scale", help="Fraction (0-1] of the paper's steps; the training subset shrinks with it.")] = 1.0,
    out: OutDir = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="CIFAR-10: JPEG .tar.xz, ImageFolder tree, or official python folder/.tar.gz.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    width_mult: Annotated[float, typer.Option("--width-mult", help="CI/CPU smoke runs only: narrow every layer by this factor (not the paper's models).")] = 1.0,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Override the spec's batch size.")] = None,
    evals: Annotated[int, typer.Option("--evals", help="Test evaluations per run.")] = 20,
    eval_images: Annotated[Optional[int], typer.Option("--eval-images", help="Test images per evaluation (default: all at scale 1, else max(500, 10000 x scale)).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (1 is fastest on a busy machine).")] = None,
    quiet: Quiet = False,
) -> None:
    """Train every run of an experiment (finished runs are skipped, partial ones resumed).

    Example: effconv experiment run kernel-size --scale 0.01 --out runs/experiments/kernel-size

    CPU smoke run: effconv experiment run optimizer --scale 0.001 --width-mult 0.25 --threads 1
    """
    from effconv.experiments.runner import run_experiment
    from effconv.experiments.studies import RunOptions

    options = RunOptions(scale=scale, width_mult=width_mult, evals=evals, eval_images=eval_images,
                         batch_size=batch_size, device=device, seed=0, threads=threads)
    folder = _out(name, out)
    with _RunProgress(quiet) as progress:
        runs = run_experiment(name, options, folder, data_source=data, on_run=progress.on_run, on_step=progress.on_step)
    if not quiet:
        show([_runs_table(runs)], console)
        console.print(f"runs: {folder}; report: effconv experiment report {name} --out {folder}", highlight=False)


class _RunProgress:
    """One rich progress display over the runs: the current run's steps and a line per run."""

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
    from effconv.experiments.report import write_report

    report_dir.mkdir(parents=True, exist_ok=True)
    report, path = write_report(name, _out(name, out), report_dir, costs=costs, note=note)
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
        ms = f"{1e3 * r.seconds_per_step:.1f}" if r.seconds_per_step else "n/a"
        table.add_row(r.label, r.spec_name, str(r.step), _fmt(r.final_acc, "pct"), _fmt(r.best_acc, "pct"), ms, r.status)
    return table
