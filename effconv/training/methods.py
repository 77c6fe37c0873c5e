"""Method-against-baseline runs at small scale: a per-class CIFAR-10 subset, one timed training
loop, and the History it records (accuracy against step and against training wall time).

Data and batches come from the training stack: `effconv.data.load_cifar10` (decoded once, then
cached), `TrainBatches` (shuffled epochs, optional crop + flip) and `EvalBatches` (a fixed draw of
test images), both normalized with the training set's CIFAR_MEAN / CIFAR_STD.

Wall time is training time only (seconds, host clock, evaluation excluded), on whatever device
and thread count torch uses; accuracy is the fraction of the evaluation images classified right.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from effconv.data import CifarArrays, load_cifar10
from effconv.data.batches import EvalBatches, Normalizer, TrainBatches
from effconv.errors import CheckFailedError, InvalidInputError, UsageError
from effconv.training.session import TrainData

# (model, images, labels) -> (scalar loss with its graph, scores [N, classes] whose argmax is the class)
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LoopOptions:
    """What every method-vs-baseline loop shares: Adam's rate, batches, evaluation and device."""

    batch_size: int = 64
    lr: float = 1e-3  # Adam, published betas (see make_optimizer for other optimizers)
    eval_every: int = 50  # steps between evaluations (and one at the end)
    seed: int = 0  # batch order (and augmentation); weights are the caller's
    augment: bool = False  # the training stack's 4-pixel-pad crop and horizontal flip
    eval_limit: int | None = None  # evaluate on this many test images (a fixed draw); None: all
    device: str = "cpu"


@dataclass(frozen=True)
class EvalPoint:
    step: int
    seconds: float  # training seconds so far (evaluation excluded)
    accuracy: float  # fraction of the evaluation images classified right
    loss: float  # mean training loss over the steps since the previous point
    train_accuracy: float  # fraction of those steps' training images classified right


@dataclass(frozen=True)
class History:
    """One training run, one EvalPoint per evaluation; `extra` holds method-specific figures."""

    method: str
    points: tuple[EvalPoint, ...]
    eval_size: int
    extra: tuple[tuple[str, float], ...] = ()

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(p.step for p in self.points)

    @property
    def seconds(self) -> tuple[float, ...]:
        return tuple(p.seconds for p in self.points)

    @property
    def accuracy(self) -> tuple[float, ...]:
        return tuple(p.accuracy for p in self.points)

    @property
    def loss(self) -> tuple[float, ...]:
        return tuple(p.loss for p in self.points)

    @property
    def final_accuracy(self) -> float:
        return self.points[-1].accuracy

    @property
    def seconds_per_step(self) -> float:
        return self.points[-1].seconds / max(self.points[-1].step, 1)


# Data ---------------------------------------------------------------------------------------------
def per_class(arrays: CifarArrays, count: int, origin: str | Path = "<data>") -> CifarArrays:
    """The first `count` images of every class, in the arrays' order (the readers sort each class
    by file name, so this is e.g. train/<class>/0000.jpg onwards)."""
    keep = [np.flatnonzero(arrays.labels == c)[:count] for c in range(len(arrays.classes))]
    short = [arrays.classes[c] for c, k in enumerate(keep) if len(k) < count]
    if short:
        raise InvalidInputError(f"fewer than {count} images for class(es) {', '.join(short[:3])}", path=origin)
    idx = np.sort(np.concatenate(keep))
    return CifarArrays(arrays.images[idx], arrays.labels[idx], arrays.classes)


def subset_per_class(data: TrainData, train_per_class: int, test_per_class: int) -> TrainData:
    """Both splits cut to the first K images per class (see `per_class`)."""
    return TrainData(
        per_class(data.train, train_per_class, data.source),
        per_class(data.test, test_per_class, data.source),
        data.source,
    )


def load_cifar_subset(
    source: str | Path | None, train_per_class: int, test_per_class: int, cache_dir: Path | None = None
) -> TrainData:
    """`subset_per_class` of any source `effconv.data.load_cifar10` reads (decoded once, cached)."""
    full = TrainData(load_cifar10(source, "train", cache_dir), load_cifar10(source, "test", cache_dir), str(source))
    return subset_per_class(full, train_per_class, test_per_class)


class Feed:
    """The training batches and the evaluation images of one run, on one device."""

    def __init__(self, data: TrainData, opts: LoopOptions) -> None:
        self.device = torch.device(opts.device)
        self.num_classes = len(data.train.classes)
        self.batches = TrainBatches(data.train, opts.batch_size, self.device, seed=opts.seed, augment=opts.augment)
        self.evalset = EvalBatches(data.test, self.device, limit=opts.eval_limit)
        self.eval_size = len(self.evalset.labels)
        # a few normalized training images, for shape probes (not part of the batch stream)
        first = torch.from_numpy(np.ascontiguousarray(data.train.images[:2].transpose(0, 3, 1, 2)))
        self.sample = Normalizer(self.device)(first.to(self.device))

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batches.next()

    @torch.no_grad()
    def accuracy(self, score_fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
        right = sum(int((score_fn(x).argmax(dim=1) == y).sum()) for x, y in self.evalset)
        return right / self.eval_size


# The loop -----------------------------------------------------------------------------------------
def run_loop(
    method: str,
    step_fn: Callable[[int], tuple[float, float]],
    eval_fn: Callable[[], float],
    *,
    steps: int,
    eval_every: int,
    eval_size: int,
    on_eval: Callable[[EvalPoint], None] | None = None,
) -> History:
    """Call `step_fn(step)` -> (training loss, fraction of the batch right) `steps` times; every
    `eval_every` steps and at the end call `eval_fn()` -> accuracy, outside the timed region, then
    `on_eval(point)`. A non-finite loss stops the run (CheckFailedError, exit 1)."""
    if steps < 1 or eval_every < 1:
        raise UsageError(f"steps and eval_every must be >= 1 (got {steps}, {eval_every})")
    points: list[EvalPoint] = []
    elapsed, window = 0.0, []
    for step in range(1, steps + 1):
        start = time.perf_counter()
        window.append(step_fn(step))
        elapsed += time.perf_counter() - start
        if step % eval_every == 0 or step == steps:
            losses, rights = zip(*window)
            if not all(math.isfinite(v) for v in losses):
                raise CheckFailedError(f"{method}: training loss is not finite at step {step}; lower the learning rate")
            point = EvalPoint(step, elapsed, eval_fn(), sum(losses) / len(losses), sum(rights) / len(rights))
            points.append(point)
            if on_eval is not None:
                on_eval(point)
            window = []
    return History(method, tuple(points), eval_size)


def cross_entropy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain classifier's LossFn: cross-entropy on the model's logits."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def adam(lr: float) -> Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]:
    return lambda params: torch.optim.Adam(params, lr=lr)


def train_classifier(
    model: torch.nn.Module,
    data: TrainData,
    *,
    method: str,
    steps: int,
    loss_fn: LossFn = cross_entropy,
    opts: LoopOptions = LoopOptions(),
) -> History:
    """Plain backprop with Adam (model trained IN PLACE, moved to opts.device); accuracy from
    the argmax of `model(x)` in eval mode."""
    feed = Feed(data, opts)
    model.to(feed.device)
    opt = adam(opts.lr)(model.parameters())

    def step_fn(_: int) -> tuple[float, float]:
        model.train()
        x, y = feed.next()
        loss, scores = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach()), float((scores.detach().argmax(1) == y).float().mean())

    def eval_fn() -> float:
        model.eval()
        return feed.accuracy(model)

    return run_loop(method, step_fn, eval_fn, steps=steps, eval_every=opts.eval_every, eval_size=feed.eval_size)
