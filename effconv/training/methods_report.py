"""CapsNet against a CNN of similar cost, synthetic gradients against backprop: run both pairs at
a given scale and write a Markdown report and a PNG (accuracy against step and against training
wall time).

The CNN baseline keeps the CapsNet's stem and primary convolution (same initial weights), drops the
capsules and routing, and classifies with a two-layer fully connected head whose width is chosen so
that its Mult-Adds per image match those of the capsule layer (W_ij transforms plus routing).
Run (no `effconv experiment` needed): `python -m effconv.training.methods_report DATA OUT_DIR [STEPS]`, with
DATA any CIFAR-10 source `effconv train --data` takes (e.g. ../shared/data/cifar10-jpg.tar.xz) and
STEPS the training steps of every method (default 300). The committed report (120 steps) is
reports/methods/comparison.md.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from effconv.io import save_png, write_text
from effconv.training.methods import History, LoopOptions, load_cifar_subset, train_classifier
from effconv.training.synthetic_gradients import train_synthetic, vgg_blocks
from effconv.training.session import TrainData
from effconv.zoo.capsnet import CapsNet, training_loss

SMALL_CAPSNET = dict(
    stem_channels=32, stem_kernel=5, stem_stride=2, primary_types=8, primary_kernel=5, decoder_hidden=(64,)
)


@dataclass(frozen=True)
class Pair:
    """A method, its baseline, and a static cost line for each (Mult-Adds, weights per image)."""

    title: str
    method: History
    baseline: History
    costs: dict[str, tuple[int, int]] = field(default_factory=dict)


def capsule_head_mult_adds(model: CapsNet) -> int:
    """Per image: I * d * J * D for u_hat, plus J * I * D per routing contraction (one weighted
    sum per iteration, one agreement update per iteration but the last)."""
    caps = model.classes
    per_contraction = model.num_primary * caps.num_out * caps.out_dim
    return model.num_primary * model.primary_dim * caps.num_out * caps.out_dim + (
        2 * caps.iterations - 1
    ) * per_contraction


def matched_cnn(model: CapsNet) -> nn.Module:
    """Stem and primary conv copied from `model`, then ReLU and an FC head of equal Mult-Adds."""
    features = model.num_primary * model.primary_dim
    classes = model.classes.num_out
    hidden = max(1, round(capsule_head_mult_adds(model) / (features + classes)))
    return nn.Sequential(
        copy.deepcopy(model.stem), copy.deepcopy(model.primary), nn.ReLU(), nn.Flatten(),
        nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes),
    )


def static_cost(model: nn.Module, input_shape: tuple[int, ...], folder: Path) -> tuple[int, int]:
    """(Mult-Adds, weights) per image from the project's ONNX profiler (paper convention)."""
    from effconv.export.onnx import export_onnx
    from effconv.profile import profile_onnx

    path = export_onnx(copy.deepcopy(model), folder / "cost.onnx", (1, *input_shape))
    prof = profile_onnx(path)
    path.unlink()
    return prof.totals.mult_adds, prof.totals.weights


def compare_capsnet(
    data: TrainData, steps: int, *, arch: dict | None = None, folder: Path, opts: LoopOptions = LoopOptions()
) -> Pair:
    """CapsNet (margin + reconstruction loss) against `matched_cnn` (cross-entropy), same batches."""
    torch.manual_seed(opts.seed)
    caps = CapsNet(**(arch or SMALL_CAPSNET), num_classes=len(data.train.classes))
    cnn = matched_cnn(caps)
    shape = (3, 32, 32)
    costs = {"CapsNet": static_cost(caps, shape, folder), "CNN": static_cost(cnn, shape, folder)}
    h_caps = train_classifier(caps, data, method="CapsNet", steps=steps, loss_fn=training_loss, opts=opts)
    h_cnn = train_classifier(cnn, data, method="CNN", steps=steps, opts=opts)
    return Pair("CapsNet against a CNN of similar cost", h_caps, h_cnn, costs)


def compare_synthetic(
    data: TrainData, steps: int, *, widths: Sequence[int] = (32, 64, 128), opts: LoopOptions = LoopOptions()
) -> Pair:
    """Synthetic gradients against backprop on `vgg_blocks(widths)`: same initial weights, batches
    and hyperparameters."""
    torch.manual_seed(opts.seed)
    blocks = vgg_blocks(widths, len(data.train.classes))
    synthetic = train_synthetic(copy.deepcopy(blocks), data, steps, opts=opts)
    baseline = train_classifier(nn.Sequential(*copy.deepcopy(blocks)), data, method="backprop", steps=steps, opts=opts)
    return Pair("Synthetic gradients against backprop (VGG-style blocks)", synthetic, baseline)


def verdict(a: History, b: History) -> list[str]:
    """Plain sentences comparing `a` with `b`: final accuracy against two standard errors (binomial,
    evaluation-set size), time per step, and b's accuracy once it had used a's training time."""
    diff = a.final_accuracy - b.final_accuracy
    se = math.sqrt(sum(h.final_accuracy * (1 - h.final_accuracy) / h.eval_size for h in (a, b)))
    if abs(diff) < 2 * se:
        acc = f"final accuracy {a.final_accuracy:.1%} against {b.final_accuracy:.1%}: the gap ({diff * 100:+.1f} points) is within two standard errors ({2 * se * 100:.1f} points), so no difference is shown at this scale"
    else:
        word = "higher" if diff > 0 else "lower"
        acc = f"final accuracy {a.final_accuracy:.1%} against {b.final_accuracy:.1%}: {a.method} is {abs(diff) * 100:.1f} points {word} (two standard errors: {2 * se * 100:.1f} points)"
    ratio = a.seconds_per_step / b.seconds_per_step
    lines = [f"{a.method} vs {b.method}: {acc}.", f"{a.method} took {ratio:.2f}x the training time per step of {b.method}."]
    within = [acc_b for s, acc_b in zip(b.seconds, b.accuracy) if s <= a.seconds[-1]]
    if within:
        lines.append(
            f"Within {a.method}'s training time ({a.seconds[-1]:.0f} s), {b.method} reached {max(within):.1%} "
            f"(best evaluation point) against {max(a.accuracy):.1%}."
        )
    return lines


def render_markdown(pairs: list[Pair], setup: str, png_name: str) -> str:
    out = ["# CapsNet and synthetic gradients against their baselines", "", setup, ""]
    for pair in pairs:
        out += [f"## {pair.title}", "", "| method | Mult-Adds/image | weights | steps | final acc | best acc | train s | ms/step |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for h in (pair.method, pair.baseline):
            ma, w = pair.costs.get(h.method, (None, None))
            cost = f"{ma:,} | {w:,}" if ma is not None else "- | -"
            out.append(f"| {h.method} | {cost} | {h.steps[-1]} | {h.final_accuracy:.1%} | {max(h.accuracy):.1%} | "
                       f"{h.seconds[-1]:.1f} | {1000 * h.seconds_per_step:.0f} |")
        extra = [f"{k} = {v:.3g}" for h in (pair.method, pair.baseline) for k, v in h.extra]
        out += [""] + [f"- {line}" for line in verdict(pair.method, pair.baseline)]
        out += ([f"- {', '.join(extra)}"] if extra else []) + [""]
    out += [f"![accuracy against step and wall time]({png_name})", ""]
    return "\n".join(out)


def plot_pairs(pairs: list[Pair], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pairs), 2, figsize=(10, 3.6 * len(pairs)), squeeze=False)
    for row, pair in zip(axes, pairs):
        for h in (pair.method, pair.baseline):
            row[0].plot(h.steps, [100 * a for a in h.accuracy], marker="o", label=h.method)
            row[1].plot(h.seconds, [100 * a for a in h.accuracy], marker="o", label=h.method)
        for ax, xlabel in zip(row, ("training step", "training wall time (s)")):
            ax.set(xlabel=xlabel, ylabel="test-subset accuracy (%)", title=pair.title)
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    save_png(fig, path, dpi=100)
    return path


def run_comparisons(
    data: TrainData,
    out_dir: str | Path,
    *,
    steps: int,
    setup: str = "",
    capsnet_arch: dict | None = None,
    widths: tuple[int, ...] = (32, 64, 128),
    opts: LoopOptions = LoopOptions(),
) -> Path:
    """Both comparisons at the given scale; writes `comparison.md` and `comparison.png` in
    `out_dir` (created if missing); returns the .md path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = [
        compare_capsnet(data, steps, arch=capsnet_arch, folder=out_dir, opts=opts),
        compare_synthetic(data, steps, widths=widths, opts=opts),
    ]
    plot_pairs(pairs, out_dir / "comparison.png")
    return write_text(out_dir / "comparison.md", render_markdown(pairs, setup, "comparison.png"))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m effconv.training.methods_report DATA OUT_DIR [STEPS]")
    source, out_dir = Path(argv[0]), Path(argv[1])
    steps = int(argv[2]) if len(argv) > 2 else 300
    per_class, test_per_class, batch, widths = 500, 100, 32, (16, 32, 64)
    data = load_cifar_subset(source, per_class, test_per_class)
    setup = (
        f"Run {time.strftime('%Y-%m-%d')} on {cpu_model()} (CPU, {torch.get_num_threads()} torch threads), "
        f"torch {torch.__version__}: `python -m effconv.training.methods_report {source.name} OUT {steps}`.\n\n"
        f"Data: CIFAR-10 ({source.name}), first {per_class} training and {test_per_class} test images per "
        f"class. The JPEG re-encoded CIFAR-10 runs about a point below the official release. "
        f"Scale: one seed, Adam lr 1e-3, batch {batch}, {steps} steps, no augmentation; VGG-style blocks "
        f"of widths {'/'.join(map(str, widths))}. Wall time: training only, host clock; evaluation excluded."
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    setup += f" Load average at the start: {load:.1f} (runnable processes; above the core count, wall times are inflated and noisy)."
    start = time.perf_counter()
    md = run_comparisons(
        data, out_dir, steps=steps, setup=setup, widths=widths,
        opts=LoopOptions(batch_size=batch, eval_every=max(1, steps // 6)),
    )
    print(md.read_text(encoding="utf-8"))
    print(f"(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
