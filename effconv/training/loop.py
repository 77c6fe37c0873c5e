"""The training loop: one Trainer per run (or resumed run), one process per rank under torchrun.

The hot path does no host-device synchronisation: loss and accuracy are summed on the device and
read every `log_every` steps (where a non-finite loss is caught), at evaluations and at the end.
Checkpoints (last.pt every evaluation, best.pt when the test accuracy improves) are written by
rank 0 only, after checking that the weights are finite, so the last good checkpoint survives.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from effconv.training import checkpoint as ckpt
from effconv.data import CIFAR_MEAN, CIFAR_STD
from effconv.data.batches import EvalBatches, TrainBatches
from effconv.errors import CheckFailedError, Interrupted, UsageError
from effconv.training.metrics import MetricsLog, MetricsRow, Progress
from effconv.training.optim import build_optimizer, build_scheduler
from effconv.training.runtime import StopFlag
from effconv.training.session import RunSetup, TrainResult
from effconv.zoo import upgrade_state_dict


class Trainer:
    def __init__(self, setup: RunSetup, on_step: Callable[[int], None] | None = None) -> None:
        self.s, self.cfg, self.rt, self.on_step = setup, setup.config, setup.runtime, on_step
        device = self.rt.device
        self.channels_last = self.cfg.channels_last and device.type == "cuda"
        self.module = setup.model.to(device)
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.module.parameters(), self.cfg)
        self.scheduler = build_scheduler(self.optimizer, self.cfg, setup.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.cfg.precision == "fp16" else None
        self.batches = TrainBatches(
            setup.data.train, self.cfg.batch_size, device, seed=self.cfg.seed, shard=self.rt.shard,
            channels_last=self.channels_last, augment=self.cfg.augment,
        )
        self.evalset = EvalBatches(
            setup.data.test, device, shard=self.rt.shard, channels_last=self.channels_last, limit=self.cfg.eval_subset
        )
        self.step, self.best_acc, self.last_acc, self.elapsed, self.saved_step = 0, None, None, 0.0, None
        self.log = MetricsLog(setup.run_dir)
        if setup.resume_payload is not None:
            self._restore(setup.resume_payload)
        # before _wrap, which asks it whether DDP must expect unused parameters; its loss reads
        # self.model (the wrapped model) when called
        self.objective = OBJECTIVES.get(setup.spec.family, _cross_entropy)(self)
        self.model = self._wrap(self.module)

    # Set-up ---------------------------------------------------------------------------------------
    def _wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        model = module
        if self.rt.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            model = DistributedDataParallel(module, device_ids=ids, find_unused_parameters=self.objective.unused_parameters)
        return torch.compile(model) if self.cfg.compile else model

    def _autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        if self.rt.device.type == "cpu" and dtype == torch.float16:
            raise UsageError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        return torch.autocast(self.rt.device.type, dtype=dtype)

    def _restore(self, payload: dict) -> None:
        self.module.load_state_dict(upgrade_state_dict(self.module, payload["model"]))
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scheduler.lr_lambdas[0].total = self.s.total_steps  # --steps may extend a resumed run
        if self.scaler is not None and payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.batches.load_state_dict(payload["data"])
        ckpt.restore_rng(payload["rng"])
        self.step, self.elapsed = int(payload["step"]), float(payload["elapsed"])
        self.best_acc, self.last_acc = payload.get("best_acc"), payload.get("test_acc")
        self.saved_step = self.step
        self.log = MetricsLog.resume(self.s.run_dir, self.step)

    # The loop -------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        progress = Progress(self.s.total_steps, self.step, quiet=self.s.quiet or not self.rt.is_main, title=self.s.spec.name)
        self._window_reset()
        try:
            with StopFlag() as stop:
                while self.step < self.s.total_steps:
                    self.advance(progress)
                    if self._stop_requested(stop):
                        self.checkpoint_now()
                        raise Interrupted(
                            f"interrupted at step {self.step}; checkpoint saved to {self.s.run_dir / ckpt.LAST}; "
                            f"continue with: effconv train --resume {self.s.run_dir}"
                        )
        finally:
            progress.close()
            self._plot()
        return self._result()

    def advance(self, progress: Progress | None = None) -> None:
        """One step, then `on_step`, a metrics row every `log_every` steps and an evaluation and
        checkpoint every `eval_every` and at the last (effconv.experiments.pack steps runs with it)."""
        self._train_step()
        if self.on_step is not None:
            self.on_step(self.step)
        evaluate = self.step % self.cfg.eval_every == 0 or self.step == self.s.total_steps
        if evaluate or self.step % self.cfg.log_every == 0:
            row = self._log_row(evaluate)
            if progress is not None:
                progress.update(row, self.best_acc)

    def checkpoint_now(self) -> None:
        """A row for the steps since the last one, then last.pt: the run can stop and resume exactly."""
        if self._window_steps:
            self._log_row(False)
        self._save(evaluated=False)

    def _train_step(self) -> None:
        x, y = self.batches.next()
        loss, logits = self._optimize(x, y)
        self._lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        self.scheduler.step()
        self.step += 1
        self._sums += torch.stack([loss.detach().float(), (logits.argmax(1) == y).sum().float(), torch.full((), float(len(y)), device=y.device)])
        self._window_steps += 1

    def _optimize(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward under autocast, backward, the optimizer's step: (loss, scores) of one batch."""
        with self._autocast():
            loss, logits = self.objective.fn(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss, logits

    def _window_reset(self) -> None:
        self._sums = torch.zeros(3, device=self.rt.device)  # loss sum, correct, images (this rank)
        self._window_steps, self._window_t0 = 0, time.perf_counter()

    def _log_row(self, evaluate: bool) -> MetricsRow:
        sums = self._all_reduce(self._sums).tolist()
        seconds = time.perf_counter() - self._window_t0
        loss = sums[0] / (self._window_steps * self.rt.shard.world)
        if not math.isfinite(loss):
            self._non_finite(loss)
        self.elapsed += seconds
        test_acc = self._evaluate() if evaluate else None
        row = MetricsRow(
            step=self.step, loss=loss, train_acc=sums[1] / max(sums[2], 1), test_acc=test_acc,
            lr=self._lr, images_per_s=sums[2] / max(seconds, 1e-9), elapsed=self.elapsed,
        )
        self.log.add(row)
        if evaluate:
            self._save(evaluated=True)
        self._window_reset()
        return row

    def _stop_requested(self, stop: StopFlag) -> bool:
        if not self.rt.distributed:
            return stop.requested
        flag = torch.tensor([float(stop.requested)], device=self.rt.device)
        return bool(self._all_reduce(flag, op="max").item())

    def _all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        if self.rt.distributed:
            import torch.distributed as dist

            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor

    @torch.no_grad()
    def _evaluate(self) -> float:
        self.module.eval()
        counts = torch.zeros(2, device=self.rt.device)
        with self._autocast():
            for x, y in self.evalset:
                counts += torch.stack([(self.module(x).argmax(1) == y).sum().float(), torch.full((), float(len(y)), device=y.device)])
        self.module.train()
        correct, seen = self._all_reduce(counts).tolist()
        self.last_acc = correct / max(seen, 1)
        return self.last_acc

    # Checkpoints and outputs -----------------------------------------------------------------------
    def _save(self, *, evaluated: bool) -> None:
        if not self._weights_finite():
            self._non_finite(float("nan"))
        if not self.rt.is_main:
            return
        improved = evaluated and (self.best_acc is None or self.last_acc > self.best_acc)
        if improved:
            self.best_acc = self.last_acc
            ckpt.save_checkpoint(self.s.run_dir / ckpt.BEST, {**self._meta("best"), "model": self.module.state_dict()})
        ckpt.save_checkpoint(self.s.run_dir / ckpt.LAST, self._full_state())
        self.saved_step = self.step
        self.log.write()

    def _weights_finite(self) -> bool:
        flags = [torch.isfinite(p).all() for p in self.module.parameters()]
        return bool(torch.stack(flags).all().item()) if flags else True

    def _meta(self, kind: str) -> dict:
        return run_meta(self.s, kind, step=self.step, test_acc=self.last_acc, best_acc=self.best_acc, elapsed=self.elapsed)

    def _full_state(self) -> dict:
        return {
            **self._meta("last"), "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict() if self.scaler else None,
            "data": self.batches.state_dict(), "rng": ckpt.capture_rng(),
        }

    def _non_finite(self, value: float) -> None:
        where = (
            f"last good checkpoint: {self.s.run_dir / ckpt.LAST} (step {self.saved_step})"
            if self.saved_step is not None else "no checkpoint had been written yet"
        )
        raise CheckFailedError(
            f"training loss became non-finite ({value}) by step {self.step}; stopped ({where}); "
            "try a lower --lr or --precision fp32"
        )

    def _plot(self) -> None:
        if self.rt.is_main and self.log.rows:
            from effconv.training.plots import plot_training_curve

            with contextlib.suppress(Exception):  # a figure must never cost the run its result
                plot_training_curve(self.log.rows, self.s.run_dir / "curve.png", title=self.s.run_id)

    def _result(self) -> TrainResult:
        rows = tuple(self.log.rows)
        rates = [r.images_per_s for r in rows]
        return TrainResult(
            run_dir=self.s.run_dir, run_id=self.s.run_id, step=self.step, total_steps=self.s.total_steps,
            test_acc=self.last_acc, best_acc=self.best_acc, rows=rows,
            images_per_s=sum(rates) / len(rates) if rates else 0.0, elapsed=self.elapsed,
        )


def run_meta(setup: RunSetup, kind: str, *, step: int, test_acc, best_acc, elapsed: float) -> dict:
    """The checkpoint fields besides the weights: what load_run and resume read back."""
    return {
        "kind": kind, "step": step, "total_steps": setup.total_steps, "test_acc": test_acc,
        "best_acc": best_acc, "elapsed": elapsed, "run_id": setup.run_id,
        "spec": ckpt.spec_to_dict(setup.spec), "config": setup.config.to_dict(),
        "classes": list(setup.data.train.classes), "mean": list(CIFAR_MEAN), "std": list(CIFAR_STD),
    }


# Objectives: (images, labels) -> (loss, scores whose argmax is the class). Cross-entropy on the
# model's logits unless the spec's family is listed here.
@dataclass(frozen=True)
class Objective:
    fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    unused_parameters: bool = False  # some parameters get no gradient (DDP must be told)


def _cross_entropy(trainer: Trainer) -> Objective:
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=trainer.cfg.label_smoothing)

    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = trainer.model(x)
        return criterion(logits, y), logits

    return Objective(fn)


def _capsnet(trainer: Trainer) -> Objective:
    """Margin loss on the class-capsule lengths (the model's output), plus the weighted
    reconstruction loss when the arch has a decoder. Under DDP the decoder is left out: the model's
    forward (what DDP wraps) returns lengths only, so the decoder's weights get no gradient there.
    With a decoder the loss runs the unwrapped module (torch.compile then does not apply)."""
    from effconv.zoo.capsnet import margin_loss, training_loss

    if trainer.cfg.label_smoothing:
        raise UsageError("label_smoothing applies to cross-entropy; capsnet trains with the margin loss")
    decoder = trainer.module.decoder is not None
    if decoder and not trainer.rt.distributed:
        return Objective(lambda x, y: training_loss(trainer.module, x, y))

    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = trainer.model(x)
        return margin_loss(lengths, y), lengths

    return Objective(fn, unused_parameters=decoder)


OBJECTIVES: dict[str, Callable[[Trainer], Objective]] = {"capsnet": _capsnet}
