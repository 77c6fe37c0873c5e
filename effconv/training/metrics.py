"""Metrics rows (metrics.jsonl and metrics.csv) and the progress display.

Both files are rewritten atomically at every checkpoint, so they always describe the run up to the
last checkpoint; a resumed run drops rows past the step it resumes from.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from effconv.io import write_text

JSONL, CSV = "metrics.jsonl", "metrics.csv"


@dataclass(frozen=True)
class MetricsRow:
    step: int
    loss: float  # mean training loss over the steps since the previous row
    train_acc: float  # fraction of those steps' (augmented) training images classified right
    test_acc: float | None  # fraction of the evaluated test images, None when not evaluated at this step
    lr: float  # the learning rate of the row's last step
    images_per_s: float  # training images per second over those steps (evaluation time excluded)
    elapsed: float  # seconds of training since the run began (summed over resumed sessions)


class MetricsLog:
    def __init__(self, run_dir: Path, rows: list[MetricsRow] | None = None) -> None:
        self.run_dir, self.rows = run_dir, list(rows or [])

    @classmethod
    def resume(cls, run_dir: Path, step: int) -> "MetricsLog":
        """Rows already written for steps up to `step` (later ones belong to the lost session)."""
        path, rows = run_dir / JSONL, []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = MetricsRow(**json.loads(line))
                    if row.step <= step:
                        rows.append(row)
        return cls(run_dir, rows)

    def add(self, row: MetricsRow) -> None:
        if self.rows and self.rows[-1].step == row.step:
            self.rows[-1] = row  # an evaluation at a logged step completes that row
        else:
            self.rows.append(row)

    def write(self) -> None:
        write_text(self.run_dir / JSONL, "".join(json.dumps(asdict(r)) + "\n" for r in self.rows))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        names = list(MetricsRow.__dataclass_fields__)
        writer.writerow(names)
        for row in self.rows:
            writer.writerow(["" if getattr(row, n) is None else _fmt(getattr(row, n)) for n in names])
        write_text(self.run_dir / CSV, buffer.getvalue())


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class Progress:
    """A rich progress bar (loss, accuracies, images/s, ETA) on stderr; does nothing when quiet."""

    def __init__(self, total_steps: int, start_step: int, *, quiet: bool, title: str) -> None:
        self.quiet, self.total, self.start_step = quiet, total_steps, start_step
        self._bar = None
        if not quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self._task = self._bar.add_task(title, total=total_steps, completed=start_step, info="")
            self._bar.start()
        self._t0 = time.perf_counter()

    def update(self, row: MetricsRow, best_acc: float | None) -> None:
        if self._bar is None:
            return
        test = f" test {row.test_acc:.2%}" if row.test_acc is not None else ""
        best = f" best {best_acc:.2%}" if best_acc is not None else ""
        loss = f"{row.loss:.4f}" if math.isfinite(row.loss) else str(row.loss)
        info = f"loss {loss} train {row.train_acc:.2%}{test}{best} {row.images_per_s:,.0f} img/s"
        self._bar.update(self._task, completed=row.step, info=info)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
