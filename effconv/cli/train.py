"""`effconv train`: train a zoo model on CIFAR-10 (thin: parse, call effconv.training.api.run_request with a
TrainRequest, print the result)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import Quiet, app, console
from effconv.errors import UsageError


# Over 40 lines for its 22 options (one per line) and help text; the body parses, calls run_request, renders.
@app.command("train")
def train_command(
    spec: Annotated[Optional[str], typer.Argument(help="Zoo model name or .toml spec path (not with --resume).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="CIFAR-10: JPEG .tar.xz, ImageFolder tree, or official python folder/.tar.gz.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory (default runs/<model>-<time>).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Optimizer steps (with --resume: the new total).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Global batch size.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate.")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help="adam | sgd | rmsprop | adagrad.")] = None,
    activation: Annotated[Optional[str], typer.Option("--activation", help="Override the spec's activation, e.g. swish.")] = None,
    norm: Annotated[Optional[str], typer.Option("--norm", help="Override the spec's normalization, e.g. none.")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32 | bf16 | fp16 (autocast; fp16 on CUDA only).")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic algorithms (slower; bit-exact resume).")] = False,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (weights, data order, augmentation).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this directory from last.pt.")] = None,
    eval_every: Annotated[Optional[int], typer.Option("--eval-every", help="Steps between test evaluations and checkpoints.")] = None,
    subset: Annotated[Optional[int], typer.Option("--subset", help="Train on N images (a fixed random subset), for quick runs.")] = None,
    target_acc: Annotated[Optional[float], typer.Option("--target-acc", help="Exit 1 unless the final test accuracy reaches this (0-1, or a percentage above 1).")] = None,
    synthetic_gradients: Annotated[bool, typer.Option("--synthetic-gradients", help="VGG-family specs: train the blocks between max pools with synthetic gradients (no resume).")] = False,
    download: Annotated[bool, typer.Option("--download", help="Fetch the official archive into the cache if no data is found.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train a model on CIFAR-10 and print its final test accuracy.

    Example: effconv train resnet20 --steps 2000 --batch-size 128 --out runs/r20

    Continue an interrupted run (Ctrl-C saves a checkpoint, exit 130): effconv train --resume runs/r20

    Synthetic gradients (VGG family): effconv train vgg19_3x3 --synthetic-gradients --steps 2000 --out runs/vgg-sg

    Several GPUs (or CPU processes, with gloo): torchrun --nproc-per-node 2 -m effconv train resnet20
    """
    from effconv.cli.validate import gpu_missing
    from effconv.training import api as lib

    if precision == "fp16" and gpu_missing():  # autocast fp16 is CUDA-only: refuse before any loading
        raise UsageError(f"--precision fp16 needs a CUDA device ({gpu_missing()}); use bf16 or fp32")
    request = lib.TrainRequest(
        spec=spec, data=data, out=out, resume=resume, activation=activation, norm=norm, steps=steps,
        batch_size=batch_size, lr=lr, optimizer=optimizer, precision=precision, seed=seed, eval_every=eval_every,
        subset=subset, compile=compile_, deterministic=deterministic, synthetic_gradients=synthetic_gradients,
        download=download, quiet=quiet,
    )
    _report(lib.run_request(request), target_acc)


def _report(result, target_acc: float | None) -> None:
    import os

    from effconv.training.api import check_target

    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports
    acc = result.test_acc if result.test_acc is not None else 0.0
    best = f", best {result.best_acc:.2%}" if result.best_acc is not None else ""
    console.print(
        f"test accuracy {acc:.2%} (step {result.step}/{result.total_steps}{best}); run: {result.run_dir}",
        highlight=False,
    )
    check_target(result, target_acc)
