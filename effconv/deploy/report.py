"""The deployment matrix as text and pictures: JSON (everything), CSV (one row per cell), Markdown
(the table, the best cell, the int8/fp32 ratios, the machine) and a latency-vs-accuracy PNG.
Every file is written atomically (effconv.io)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from effconv.deploy.result import Cell, Matrix

COLUMNS = ("backend", "precision", "status", "ran", "median_ms", "p99_ms", "throughput", "file_bytes",
           "weight_bytes", "mult_adds", "accuracy", "agreement", "drop_points", "accuracy_on", "best", "reason")


def display_name(source: str) -> str:
    """A run's folder name for a checkpoint file (runs/r20/last.pt -> r20), else the file name."""
    path = Path(source)
    return path.parent.name if path.suffix in (".pt", ".pth", ".ckpt", ".safetensors") else path.name


def matrix_json(matrix: Matrix) -> str:
    return json.dumps({"deploy": matrix.to_dict()}, indent=2, default=str) + "\n"


def matrix_csv(matrix: Matrix) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in matrix.cells:
        writer.writerow(["" if getattr(c, k) is None else getattr(c, k) for k in COLUMNS])
    return buf.getvalue()


def _fmt(value, spec: str, empty: str = "-") -> str:
    return empty if value is None else format(value, spec)


def accuracy_text(c: Cell, labelled: bool) -> str:
    if labelled and c.accuracy is not None:
        return f"{c.accuracy:.2%}"
    return f"{c.agreement:.2%} agree" if c.agreement is not None else "-"


def table_rows(matrix: Matrix) -> list[list[str]]:
    """The cells that ran, as display strings (shared by Markdown and the terminal table)."""
    rows = []
    for c in matrix.cells:
        if c.status != "ok":
            continue
        rows.append([("**best** " if c.best else "") + c.backend, c.precision, c.ran or "-", _fmt(c.median_ms, ".3f"),
                     _fmt(c.p99_ms, ".3f"), _fmt(c.throughput, ",.0f"), _fmt(c.file_bytes, ","),
                     _fmt(c.weight_bytes, ","), _fmt(c.mult_adds, ","), accuracy_text(c, matrix.labelled),
                     _fmt(c.drop_points, "+.2f"), c.accuracy_on or "-"])
    return rows


HEADER = ["backend", "precision", "ran as", "median ms", "p99 ms", "img/s", "file bytes", "weight bytes",
          "Mult-Adds", "accuracy", "drop (pts)", "answers by"]


def matrix_markdown(matrix: Matrix, *, title: str | None = None) -> str:
    lines = [f"## {title or display_name(matrix.source)}", ""]
    acc = (f"top-1 accuracy on {matrix.images:,} labelled images ({matrix.image_source})" if matrix.labelled
           else f"top-1 agreement with {matrix.reference} on {matrix.images:,} images ({matrix.image_source})"
           if matrix.images else "accuracy not measured")
    lines += [f"Batch {matrix.batch}; {acc}; drop = {matrix.reference} minus the cell, in points.", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(matrix)]
    best = matrix.best
    budget = f" and {matrix.budget_ms:g} ms" if matrix.budget_ms is not None else ""
    lines += ["", f"Best (fastest median within {matrix.max_accuracy_drop:g} points{budget}): "
              + (f"**{best.label}**, {best.median_ms:.3f} ms" if best else "none")]
    for backend, ratio in matrix.ratios().items():
        lines.append(f"- {backend}: int8 / fp32 median latency = {ratio:.3f} ({1 / ratio:.2f}x faster)")
    skipped = [f"{c.label}: {c.reason}" for c in matrix.cells if c.status != "ok"]
    if skipped:
        lines += ["", "Not run: " + "; ".join(skipped)]
    for note in matrix.notes:
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


def machine_markdown(env: dict) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in (env.get("libraries") or {}).items())
    return (f"Machine: {env.get('host_cpu')}, {env.get('host_cores')} cores visible, {env.get('os')}, "
            f"Python {env.get('python')}; {libs}\n")


def plot_matrix(matrices: list[Matrix], path: str | Path) -> Path:
    """One panel per matrix: median latency (x, log) against accuracy or agreement (y); colour
    per backend, marker per precision; the best cell circled in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from effconv.io import save_png

    markers = {"fp32": "o", "fp16": "^", "bf16": "s", "int8": "D"}
    backends = list(dict.fromkeys(c.backend for m in matrices for c in m.cells))
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 4.2), squeeze=False)
    for ax, m in zip(axes[0], matrices):
        for c in m.cells:
            y = c.accuracy if m.labelled else c.agreement
            if c.status != "ok" or c.median_ms is None or y is None:
                continue
            ax.scatter(c.median_ms, 100 * y, marker=markers.get(c.precision, "x"), s=60, label=c.label,
                       color=f"C{backends.index(c.backend)}")
            if c.best:
                ax.scatter(c.median_ms, 100 * y, s=260, facecolors="none", edgecolors="red", linewidths=1.5)
        ax.set_xscale("log")
        ax.set_xlabel("median latency, ms (log scale)")
        ax.set_ylabel("top-1 accuracy, %" if m.labelled else "top-1 agreement with fp32, %")
        ax.set_title(f"{display_name(m.source)} (batch {m.batch})", fontsize=10)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # --no-accuracy: no points to label
            ax.legend(fontsize=7, loc="best")
    fig.suptitle("Deployment matrix: latency vs accuracy (red circle: best cell)", fontsize=11)
    fig.tight_layout()
    return save_png(fig, path, dpi=120)


def write_outputs(matrix: Matrix, *, json_path=None, csv_path=None, markdown_path=None, plot_path=None) -> list[Path]:
    from effconv.io import write_text

    written = []
    for path, text in ((json_path, matrix_json), (csv_path, matrix_csv),
                       (markdown_path, lambda m: matrix_markdown(m) + "\n" + machine_markdown(m.environment))):
        if path is not None:
            written.append(write_text(path, text(matrix)))
    if plot_path is not None:
        written.append(plot_matrix([matrix], plot_path))
    return written
