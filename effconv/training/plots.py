"""Figures: the training curve of a run (loss and accuracy against step), written atomically as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from effconv.io import save_png


def plot_training_curve(rows: Sequence[Any], path: str | Path, *, title: str = "") -> Path | None:
    """Plot rows with `step`, `loss`, `train_acc`, `test_acc` to `path`; None when there are no rows."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    steps = [r.step for r in rows]
    ax_loss.plot(steps, [r.loss for r in rows], color="tab:blue")
    ax_loss.set(xlabel="step", ylabel="training loss", title="loss")
    ax_acc.plot(steps, [100 * r.train_acc for r in rows], label="train (augmented)", color="tab:orange")
    tested = [r for r in rows if r.test_acc is not None]
    if tested:
        ax_acc.plot([r.step for r in tested], [100 * r.test_acc for r in tested], "o-", label="test", color="tab:green")
    ax_acc.set(xlabel="step", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path)
