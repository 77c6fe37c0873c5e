"""`effconv train`: train a zoo model on CIFAR-10 (thin: parse, call effconv.training.api, print the result)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from effconv.cli.app import Quiet, app, console
from effconv.errors import CheckFailedError, UsageError


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
    from effconv.training import api as lib
    from effconv.cli.validate import gpu_missing

    if precision == "fp16" and gpu_missing():  # autocast fp16 is CUDA-only: refuse before any loading
        raise UsageError(f"--precision fp16 needs a CUDA device ({gpu_missing()}); use bf16 or fp32")

    overrides = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "precision": precision,
        "seed": seed, "eval_every": eval_every, "subset": subset,
        "compile": True if compile_ else None, "deterministic": True if deterministic else None,
        "synthetic_gradients": True if synthetic_gradients else None,
    }
    if resume is not None:
        others = [k for k, v in overrides.items() if v is not None and k != "steps"]
        if spec is not None or activation or norm or others:
            raise UsageError("--resume continues a run as configured; only --steps (a new total), --data and --quiet may be given")
        result = lib.resume(resume, steps=steps, data_source=data, quiet=quiet)
    else:
        if spec is None:
            raise UsageError("give a model (zoo name or .toml path), or --resume RUN_DIR")
        model_spec = _spec(spec, activation, norm)
        config = lib.config_from_table(model_spec.train, overrides, source=model_spec.source)
        data_arrays = lib.load_train_data(data, download=download) if download else None
        result = lib.train(model_spec, config, data=data_arrays, data_source=data, out=out, quiet=quiet)
    _report(result, target_acc)


def _spec(name: str, activation: str | None, norm: str | None):
    from effconv.specs import load_spec
    from effconv.zoo import with_arch

    spec = load_spec(name)
    arch = {k: v for k, v in (("activation", activation), ("norm", norm)) if v is not None}
    return with_arch(spec, **arch) if arch else spec


def _report(result, target_acc: float | None) -> None:
    import os

    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports
    acc = result.test_acc if result.test_acc is not None else 0.0
    best = f", best {result.best_acc:.2%}" if result.best_acc is not None else ""
    console.print(
        f"test accuracy {acc:.2%} (step {result.step}/{result.total_steps}{best}); run: {result.run_dir}",
        highlight=False,
    )
    if target_acc is not None:
        target = target_acc / 100 if target_acc > 1 else target_acc
        if acc < target:
            raise CheckFailedError(f"test accuracy {acc:.2%} is below the target {target:.2%}")
