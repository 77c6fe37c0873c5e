"""Train a zoo model on CIFAR-10: `train(spec, config)` starts a run, `resume(run_dir)` continues one.

A run directory holds config.json (the resolved configuration), metrics.jsonl and metrics.csv,
last.pt (full state for an exact resume) and best.pt (weights at the best test accuracy), and
curve.png (a `synthetic_gradients` run: no last.pt, see effconv.training.synthetic_gradients.run_synthetic). A
"capsnet" spec trains with the margin loss (effconv.training.loop.OBJECTIVES). Under
`torchrun --nproc-per-node N -m effconv train ...` each process trains on its slice of every
global batch with DistributedDataParallel; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effconv.errors import CheckFailedError, EffconvError, UsageError
from effconv.training.config import TrainConfig, config_from_dict, config_from_table
from effconv.training.session import TrainData, TrainResult

if TYPE_CHECKING:
    import torch

    from effconv.specs import ModelSpec

__all__ = ["TrainConfig", "TrainData", "TrainRequest", "TrainResult", "check_target", "config_from_table",
           "load_train_data", "open_run", "resume", "run_request", "train"]


def load_train_data(
    source: str | Path | None = None, cache_dir: Path | None = None, *, download: bool = False
) -> TrainData:
    """Both CIFAR-10 splits from `source` (None: --data's default search), optionally downloading."""
    from effconv.data import download_cifar10, load_cifar10, resolve_source

    try:
        path = resolve_source(source, cache_dir)
    except UsageError:
        if not download or source is not None:
            raise
        path = download_cifar10(cache_dir)
    return TrainData(load_cifar10(path, "train", cache_dir), load_cifar10(path, "test", cache_dir), str(path))


def train(
    spec: "ModelSpec | str | Path",
    config: TrainConfig | None = None,
    *,
    data: TrainData | None = None,
    data_source: str | Path | None = None,
    cache_dir: Path | None = None,
    out: str | Path | None = None,
    quiet: bool = True,
    model: "torch.nn.Module | None" = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train `spec` (a ModelSpec, zoo name or .toml path) with `config` (default: the spec's [train])."""
    from effconv.specs import load_spec
    from effconv.training import session as ses

    if not hasattr(spec, "family"):
        spec = load_spec(spec)
    config = config or config_from_table(spec.train, source=spec.source)
    run_dir = Path(out) if out is not None else ses.default_run_dir(spec.name)
    return _run(spec, config, data, data_source, cache_dir, run_dir, None, quiet, model, on_step)


def resume(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    data: TrainData | None = None,
    data_source: str | Path | None = None,
    cache_dir: Path | None = None,
    quiet: bool = True,
    model: "torch.nn.Module | None" = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Continue a run from its last.pt exactly where it stopped (optionally to a new total of `steps`)."""
    run_dir = Path(run_dir)
    spec, config, payload, data_source = _resume_parts(run_dir, steps, data, data_source)
    return _run(spec, config, data, data_source, cache_dir, run_dir, payload, quiet, model, on_step)


def _resume_parts(run_dir: Path, steps: int | None, data, data_source):
    """(spec, config, last.pt's payload, data source) of the run in `run_dir`."""
    from effconv.training import checkpoint as ckpt

    record = ckpt.read_config_json(run_dir)
    spec = ckpt.spec_from_dict(record["spec"])
    config = config_from_dict(record["config"], source=run_dir / ckpt.CONFIG)
    if steps is not None:
        config = dataclasses.replace(config, steps=steps, epochs=None)
    if config.synthetic_gradients:
        raise UsageError("a synthetic-gradient run keeps no last.pt and cannot be resumed; start a new run", path=run_dir)
    payload = ckpt.load_checkpoint(run_dir / ckpt.LAST)
    if data is None and data_source is None and record.get("data_source") and Path(record["data_source"]).exists():
        data_source = record["data_source"]
    return spec, config, payload, data_source


@dataclass(frozen=True)
class TrainRequest:
    """What `effconv train` asks for: a new run of `spec` (its [train] recipe, with the values
    given here overriding it; None keeps the recipe's), or `resume` of a run folder."""

    spec: str | None = None  # zoo name or .toml path
    data: Path | None = None
    out: Path | None = None
    resume: Path | None = None
    activation: str | None = None  # [arch] overrides
    norm: str | None = None
    steps: int | None = None  # with resume: the new total
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    precision: str | None = None
    seed: int | None = None
    eval_every: int | None = None
    subset: int | None = None
    compile: bool = False
    deterministic: bool = False
    synthetic_gradients: bool = False
    download: bool = False
    quiet: bool = True

    def overrides(self) -> dict[str, Any]:
        """The [train] values this request sets (None: the recipe's); switches only when on."""
        names = ("steps", "batch_size", "lr", "optimizer", "precision", "seed", "eval_every", "subset")
        switches = ("compile", "deterministic", "synthetic_gradients")
        return {**{k: getattr(self, k) for k in names}, **{k: True if getattr(self, k) else None for k in switches}}


def run_request(request: TrainRequest) -> TrainResult:
    """`effconv train`: resume the run named (only --steps, --data and --quiet may be given with
    it), or start one from the spec with the request's overrides."""
    overrides = request.overrides()
    if request.resume is not None:
        others = [k for k, v in overrides.items() if v is not None and k != "steps"]
        if request.spec is not None or request.activation or request.norm or others:
            raise UsageError("--resume continues a run as configured; only --steps (a new total), --data and "
                             "--quiet may be given")
        return resume(request.resume, steps=request.steps, data_source=request.data, quiet=request.quiet)
    if request.spec is None:
        raise UsageError("give a model (zoo name or .toml path), or --resume RUN_DIR")
    spec = _spec_with_arch(request.spec, request.activation, request.norm)
    config = config_from_table(spec.train, overrides, source=spec.source)
    data = load_train_data(request.data, download=True) if request.download else None
    return train(spec, config, data=data, data_source=request.data, out=request.out, quiet=request.quiet)


def _spec_with_arch(name: str, activation: str | None, norm: str | None):
    from effconv.specs import load_spec
    from effconv.zoo import with_arch

    spec = load_spec(name)
    arch = {k: v for k, v in (("activation", activation), ("norm", norm)) if v is not None}
    return with_arch(spec, **arch) if arch else spec


def check_target(result: TrainResult, target_acc: float | None) -> None:
    """Exit 1 unless the final test accuracy reaches `target_acc` (0-1, or a percentage above 1)."""
    if target_acc is None:
        return
    acc = result.test_acc if result.test_acc is not None else 0.0
    target = target_acc / 100 if target_acc > 1 else target_acc
    if acc < target:
        raise CheckFailedError(f"test accuracy {acc:.2%} is below the target {target:.2%}")


def _run(spec, config, data, data_source, cache_dir, run_dir, payload, quiet, model, on_step) -> TrainResult:
    with _session(spec, config, data, data_source, cache_dir, run_dir, payload, quiet, model) as setup:
        if config.synthetic_gradients:
            from effconv.training.synthetic_gradients import run_synthetic

            return run_synthetic(setup)  # on_step is not offered there
        from effconv.training.loop import Trainer

        return Trainer(setup, on_step).run()


@contextlib.contextmanager
def open_run(
    out: str | Path, spec: "ModelSpec | None" = None, config: TrainConfig | None = None, *, data: TrainData,
    model: "torch.nn.Module | None" = None, on_step: Callable[[int], None] | None = None, trainer: type | None = None,
):
    """A run set up exactly as `train` (spec and config given: a new run in `out`) or `resume`
    (neither: the run in `out`) sets it up, its folder locked, yielded as a Trainer (or an instance
    of `trainer`, a subclass) that has not stepped: the caller drives it (Trainer.advance,
    checkpoint_now). effconv.experiments.pack trains several runs at once this way. One process
    only (no DDP) and no synthetic-gradient runs."""
    import os

    from effconv.training.loop import Trainer

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("open_run drives one process; under torchrun use train()")
    out, payload = Path(out), None
    if spec is None:
        spec, config, payload, _ = _resume_parts(out, None, data, None)
    config = config or config_from_table(spec.train, source=spec.source)
    if config.synthetic_gradients:
        raise UsageError("a synthetic-gradient run cannot be driven step by step; use train()")
    with _session(spec, config, data, None, None, out, payload, True, model) as setup:
        yield (trainer or Trainer)(setup, on_step)


@contextlib.contextmanager
def _session(spec, config, data, data_source, cache_dir, run_dir, payload, quiet, model):
    """The runtime, seeds and locked run folder of one run, yielded as its RunSetup."""
    from effconv.training import runtime as rtm

    rt = rtm.setup_runtime(config)
    switches = rtm.seed_everything(config, rt.shard.rank)
    try:
        with _run_folder(run_dir, rt.is_main, new=payload is None):
            yield _setup(spec, config, data, data_source, cache_dir, run_dir, payload, quiet, model, rt)
    finally:
        rtm.restore_switches(switches)
        rtm.teardown_runtime(rt)


@contextlib.contextmanager
def _run_folder(run_dir: Path, is_main: bool, *, new: bool):
    """Rank 0 holds the run folder's lock for the whole run (effconv.io.folder_lock): a second
    `effconv train --out` of the same folder, started at any moment, is refused with exit 2. A
    folder made here and still empty when the run fails (bad data, bad batch size) is removed."""
    from effconv.io import folder_lock

    if not is_main:
        yield
        return
    created = new and not run_dir.exists()
    if new:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # permission, read-only file system, a file in the way
            raise UsageError(f"cannot create the run directory ({exc.strerror or exc})", path=run_dir) from exc
    locked = False
    try:
        with folder_lock(run_dir, "run folder"):
            locked = True
            yield
    finally:
        if created and locked:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when empty


def _setup(spec, config, data, data_source, cache_dir, run_dir, payload, quiet, model, rt) -> "ses.RunSetup":
    from effconv.training import session as ses

    if config.synthetic_gradients:
        from effconv.training.synthetic_gradients import check_synthetic

        check_synthetic(spec, config, rt.distributed)  # before the data is read
    data = ses.take_subset(data or load_train_data(data_source, cache_dir), config)
    if config.batch_size > len(data.train):
        raise UsageError(f"batch size {config.batch_size} exceeds the {len(data.train)} training images")
    if model is None:
        from effconv.zoo import build_model

        model = build_model(spec)  # after seeding: the initial weights follow the seed
    total = config.total_steps(len(data.train))
    run_id = payload["run_id"] if payload else run_dir.name
    if payload is None:
        record = ses.run_record(spec, config, data, run_id, total, rt)
        _agree(rt, lambda: ses.start_run_dir(run_dir, record, rt.is_main))
    elif rt.is_main:
        ses.update_run_record(run_dir, config, total)  # --steps: config.json says the new total
    return ses.RunSetup(spec, config, rt, data, model, run_dir, run_id, total, payload, quiet)


def _agree(rt, action: Callable[[], Any]) -> None:
    """Run `action` (rank 0's set-up); under DDP every rank learns whether it failed, so none hangs."""
    error: EffconvError | None = None
    try:
        action()
    except EffconvError as exc:
        error = exc
    if rt.distributed:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([float(error is not None)], device=rt.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and error is None:
            error = UsageError("rank 0 could not set up the run directory")
    if error is not None:
        raise error
