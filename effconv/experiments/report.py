"""The Markdown report of an experiment: every claim judged (effconv.experiments.verdicts), the
setup it was measured in, a table of the runs and their figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from effconv.experiments.runs import RunSummary
from effconv.experiments.verdicts import MIN_SCALE, STEP_RATIO, TIME_RATIO, Finding, judge, pct

JPEG_CAVEAT = ("the CIFAR-10 images are a JPEG re-encoding of the official release; accuracies on it run "
               "about a point below the official binary release")


@dataclass(frozen=True)
class ExperimentReport:
    name: str
    markdown: str
    findings: tuple[tuple[str, Finding], ...]  # (claim text, finding)
    figures: tuple[str, ...]  # file names beside the report


def load_runs(name: str, out) -> list[RunSummary]:
    """The runs of experiment `name` under `out` (UsageError naming the first one missing)."""
    from pathlib import Path

    from effconv.errors import UsageError
    from effconv.experiments.studies import get_experiment
    from effconv.experiments.runs import read_run

    runs = []
    for plan in get_experiment(name).runs:
        path = Path(out) / plan.label
        if not (path / "config.json").is_file():
            raise UsageError(f"run {plan.label!r} is missing; train it with: effconv experiment run {name} --out {out}", path=path)
        runs.append(read_run(path))
    return runs


def build_report(name: str, runs: list[RunSummary], *, costs=None, figures: Sequence[str] = (), date: str = "",
                 note: str = "") -> ExperimentReport:
    """Judge every claim of experiment `name` on `runs` and render the Markdown."""
    from effconv.experiments.studies import get_experiment

    exp = get_experiment(name)
    by_label = {r.label: r for r in runs}
    scale = min(float(r.extra.get("scale", 1.0)) for r in runs)
    width = min(r.width_mult for r in runs)
    findings = tuple((c.text, judge(c.rule, by_label, scale=scale, width_mult=width)) for c in exp.claims)
    setup = _setup_lines(runs, scale, width, date) + ([f"- Note: {note}"] if note else [])
    lines = [f"# {exp.title}", "", *setup, "", "## The paper's claims and our data", "",
             "| Paper's claim | Our measurement | Verdict |", "|---|---|---|"]
    for text, f in findings:
        lean = f" (data alone: {f.leaning})" if f.leaning else ""
        lines.append(f"| {text} | {f.measurement} | **{f.verdict}**{lean} |")
    lines += ["", f"Rules (effconv/experiments/verdicts.py): accuracy differences count beyond twice their standard error; "
              f"step and oscillation ratios beyond {STEP_RATIO}; time ratios beyond {TIME_RATIO}; a run below "
              f"{MIN_SCALE:g} of the paper's steps or with a width multiplier is inconclusive at this scale.",
              "", "## Runs", "", *_run_table(runs, costs or {})]
    if figures:
        lines += ["", "## Figures", "", *[f"![{f}]({f})" for f in figures]]
    return ExperimentReport(name, "\n".join(lines) + "\n", findings, tuple(figures))


def _setup_lines(runs: list[RunSummary], scale: float, width: float, date: str) -> list[str]:
    import time

    first = runs[0]
    cfg = first.config
    devices = sorted({r.device for r in runs})
    wall = sum(r.wall_seconds or 0.0 for r in runs)
    train = sum(r.train_seconds for r in runs)
    lines = [
        f"- Report date: {date or time.strftime('%Y-%m-%d %H:%M:%S %Z')}; runs trained {first.extra.get('date', '?')} (first run)",
        f"- Device: {'; '.join(devices)}",
        f"- Scale: {scale:g} of the paper's steps ({', '.join(f'{r.label} {r.total_steps}' for r in runs)} steps); "
        f"batch {cfg.get('batch_size')}; training subset {cfg.get('subset') or 'all 50,000'} images; "
        f"{first.test_images} test images per evaluation",
        f"- Width multiplier: {width:g}" + ("" if width == 1.0 else " (narrowed models for a CPU run: not the paper's networks)"),
        f"- Wall time: {wall:.0f} s for all runs ({train:.0f} s of it in training steps)",
        f"- Data: {first.data_source or '?'}" + (f"; note: {JPEG_CAVEAT}" if "jpg" in first.data_source.lower() else ""),
        f"- Reproduce: `effconv experiment run {first.extra.get('experiment', '?')} --scale {scale:g} --width-mult {width:g} "
        f"--batch-size {cfg.get('batch_size')} --evals {len(first.evals)} --eval-images {first.test_images}`",
    ]
    if scale < 1.0 or width < 1.0:
        lines.append("- The full-scale run (scale 1.0, width 1.0) is pending a GPU.")
    packed = sorted({int(r.extra["pack"]["slots"]) for r in runs if (r.extra.get("pack") or {}).get("slots", 1) > 1})
    if packed:
        lines.append(f"- Packed: trained {' or '.join(map(str, packed))} runs at a time on one device; ms/step (and the "
                     "claims about time) are each model's steps measured alone on that device by the plan's probe")
    status = [f"{r.label}: {r.status}" for r in runs if r.status != "complete"]
    if status:
        lines.append(f"- Not complete: {', '.join(status)}")
    return lines


def _run_table(runs: list[RunSummary], costs: Mapping[str, object]) -> list[str]:
    lines = ["| Run | Spec | Steps | Final test acc | Best | ms/step | Train s | Wall s | Weights | Mult-Adds / image |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        c = costs.get(r.label)
        ms = f"{1e3 * r.step_seconds:.1f}" if r.step_seconds else "n/a"
        wall = f"{r.wall_seconds:.0f}" if r.wall_seconds is not None else "n/a"
        lines.append(f"| {r.label} | {r.spec_name} | {r.step} | {pct(r.final_acc)} | {pct(r.best_acc)} | {ms} | "
                     f"{r.train_seconds:.0f} | {wall} | {f'{c.weights:,}' if c else 'n/a'} | {f'{c.mult_adds:,}' if c else 'n/a'} |")
    return lines


def write_report(name: str, out, report_dir, *, costs: bool = True, note: str = "") -> tuple[ExperimentReport, object]:
    """Read the runs of `name` under `out`, write <report_dir>/<name>.md and its PNG figures."""
    from pathlib import Path

    from effconv.io import write_text
    from effconv.experiments.run_costs import run_costs
    from effconv.experiments.runs import plot_runs

    runs = load_runs(name, out)
    report_dir = Path(report_dir)
    figs = plot_runs(runs, report_dir, title=name, prefix=f"{name}-")
    table = {r.label: run_costs(r, latency=False) for r in runs} if costs else {}
    report = build_report(name, runs, costs=table, figures=[f.name for f in figs], note=note)
    path = write_text(report_dir / f"{name}.md", report.markdown)
    return report, path
