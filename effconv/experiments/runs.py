"""Read finished (or partial) training run directories into `RunSummary`s; torch-free.

A run directory (written by effconv.training.api) holds config.json and metrics.jsonl. An experiment run
also holds experiment.json (written by effconv.experiments.runner): the experiment, the run's label, the
width multiplier it was trained with (1.0: the spec's own model), wall time and the host device.

Units: accuracies are fractions (0-1); times are seconds. `train_seconds` is training time only
(evaluation and checkpoints excluded, summed over resumed sessions); `wall_seconds` is the time the
experiment runner spent on the run, everything included (None for runs it did not train).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effconv.errors import InvalidInputError, UsageError

CONFIG, METRICS, EXPERIMENT = "config.json", "metrics.jsonl", "experiment.json"


@dataclass(frozen=True)
class Point:
    """One metrics row: step, training loss, test accuracy (None when not evaluated), seconds."""

    step: int
    loss: float
    test_acc: float | None
    elapsed: float  # training seconds since the run began


@dataclass(frozen=True)
class RunSummary:
    path: Path
    label: str  # the experiment's label for the run, else the run id
    spec: dict[str, Any]  # the spec as config.json records it
    config: dict[str, Any]  # the resolved TrainConfig
    total_steps: int
    test_images: int  # images per evaluation (sets the noise of an accuracy)
    points: tuple[Point, ...]
    device: str = ""
    data_source: str = ""
    width_mult: float = 1.0
    wall_seconds: float | None = None
    status: str = "complete"  # complete | partial | diverged
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spec_name(self) -> str:
        return str(self.spec.get("name", "?"))

    @property
    def step(self) -> int:
        return self.points[-1].step if self.points else 0

    @property
    def evals(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.test_acc is not None)

    @property
    def final_acc(self) -> float | None:
        evals = self.evals
        return evals[-1].test_acc if evals else None

    @property
    def best_acc(self) -> float | None:
        accs = [p.test_acc for p in self.evals]
        return max(accs) if accs else None

    @property
    def first_acc(self) -> float | None:
        evals = self.evals
        return evals[0].test_acc if evals else None

    @property
    def train_seconds(self) -> float:
        return self.points[-1].elapsed if self.points else 0.0

    @property
    def seconds_per_step(self) -> float | None:
        """Median training seconds per step over the logged windows (consecutive metrics rows).
        Each session's first window carries its start-up (the first steps' kernel selection, a
        resumed run's restore); a total / steps spread that over every step, so a resumed run
        read about 1.5x slower than it trains. None before the first logged step."""
        windows, prev_step, prev_elapsed = [], 0, 0.0
        for p in self.points:
            if p.step > prev_step and p.elapsed >= prev_elapsed:
                windows.append((p.elapsed - prev_elapsed) / (p.step - prev_step))
            prev_step, prev_elapsed = p.step, p.elapsed
        if not windows:
            return None
        windows.sort()
        mid = len(windows) // 2
        return windows[mid] if len(windows) % 2 else (windows[mid - 1] + windows[mid]) / 2

    @property
    def step_seconds(self) -> float | None:
        """Seconds per training step of this model on its device, for the claims about time. A
        run packed with others (effconv.experiments.pack) shares the device in every window, so
        its windows say little about its own cost: the plan's probe of the model alone on the same
        device stands in (experiment.json's pack.probe_alone_seconds_per_step); else seconds_per_step."""
        pack = self.extra.get("pack") or {}
        if pack.get("slots", 1) > 1 and pack.get("probe_alone_seconds_per_step"):
            return float(pack["probe_alone_seconds_per_step"])
        return self.seconds_per_step

    def steps_to(self, target: float) -> int | None:
        """The first evaluated step whose test accuracy reaches `target`; None if none does."""
        return next((p.step for p in self.evals if p.test_acc >= target), None)

    def acc_change_std(self) -> float | None:
        """Standard deviation of the change in test accuracy between consecutive evaluations
        (how much the curve oscillates); None with fewer than three evaluations."""
        accs = [p.test_acc for p in self.evals]
        diffs = [b - a for a, b in zip(accs, accs[1:])]
        if len(diffs) < 2:
            return None
        mean = sum(diffs) / len(diffs)
        return math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))


def read_run(path: str | Path) -> RunSummary:
    """Summarize the run directory `path`; UsageError if it is not one, InvalidInputError if broken."""
    path = Path(path)
    if not (path / CONFIG).is_file():
        raise UsageError(f"not a run directory (no {CONFIG})", path=path)
    record = _read_json(path / CONFIG)
    meta = _read_json(path / EXPERIMENT) if (path / EXPERIMENT).is_file() else {}
    points = read_points(path / METRICS)
    total = int(record.get("total_steps") or 0)
    status = meta.get("status") or ("complete" if points and points[-1].step >= total else "partial")
    return RunSummary(
        path=path, label=str(meta.get("label") or record.get("run_id") or path.name),
        spec=dict(record.get("spec") or {}), config=dict(record.get("config") or {}), total_steps=total,
        test_images=int(record.get("test_images") or 0), points=points,
        device=str(meta.get("device_name") or record.get("device") or ""),
        data_source=str(record.get("data_source") or ""), width_mult=float(meta.get("width_mult", 1.0)),
        wall_seconds=meta.get("wall_seconds"), status=status, extra=meta,
    )


def read_points(path: Path) -> tuple[Point, ...]:
    """The rows of a metrics.jsonl (an absent file: no rows)."""
    if not path.is_file():
        return ()
    points = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            points.append(Point(int(row["step"]), float(row["loss"]), row.get("test_acc"), float(row["elapsed"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"line {n} is not a metrics row ({exc})", path=path) from exc
    return tuple(points)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read JSON ({exc})", path=path) from exc
    if not isinstance(data, dict):
        raise InvalidInputError("expected a JSON object", path=path)
    return data


# Figures ------------------------------------------------------------------------------------------
PLOTS = {  # file name -> (x attribute, y attribute, x label, y label, evaluated points only)
    "test_acc_vs_step.png": ("step", "test_acc", "step", "test accuracy (%)", True),
    "test_acc_vs_time.png": ("elapsed", "test_acc", "training time (s)", "test accuracy (%)", True),
    "loss_vs_step.png": ("step", "loss", "step", "training loss", False),
}


def plot_runs(runs: list[RunSummary], folder: str | Path, *, title: str = "", prefix: str = "") -> list[Path]:
    """Write the PLOTS figures (one line per run) into `folder` as <prefix><name>."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from effconv.io import save_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (xa, ya, xl, yl, evals) in PLOTS.items():
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
        for run in runs:
            pts = run.evals if evals else run.points
            scale = 100.0 if ya == "test_acc" else 1.0
            ax.plot([getattr(p, xa) for p in pts], [scale * getattr(p, ya) for p in pts], marker="." if evals else None, label=run.label)
        ax.set(xlabel=xl, ylabel=yl, title=title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        fig.tight_layout()
        save_png(fig, folder / f"{prefix}{name}")
        written.append(folder / f"{prefix}{name}")
    return written
