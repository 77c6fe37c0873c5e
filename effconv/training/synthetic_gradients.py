"""Decoupled neural interfaces: training blocks of a network with synthetic gradients.

A network is a list of blocks. Every block but the last owns a small predictor (`SyntheticGradient`)
that maps the block's output activation h_k (optionally with the labels) to an estimate of dL/dh_k.
Per step, block by block from the bottom:
  1. block k runs forward on its input (detached: no graph links blocks together);
  2. block k backpropagates the PREDICTED gradient (the last block: the true loss) and its
     optimizer steps at once, without waiting for the blocks above;
  3. the input gradient that block k's backward produced is the target for block k-1's predictor
     (for the top predictor it is the true loss gradient; below, it is bootstrapped from the
     predictor above, as in DNI); the predictors regress onto their targets (mean squared error).
On one device the blocks still run one after another, so a step costs MORE time than backprop
(the predictors' forward and backward are extra); the method's gain is that blocks on separate
workers need not wait for each other, which a single-process run does not show.

`effconv train SPEC --synthetic-gradients` trains a VGG-family spec this way (`run_synthetic`): the
zoo model is cut at its max pools (`split_at_pools`), every block gets its own optimizer of the
run's [train] choice, and the predictors learn with Adam at SG_LR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from effconv.training.methods import EvalPoint, Feed, History, LoopOptions, adam, run_loop
from effconv.training.session import TrainData

SG_LR = 1e-3  # Adam rate of the gradient predictors (their targets shrink as the blocks learn)


def vgg_blocks(widths: Sequence[int] = (32, 64, 128), num_classes: int = 10, in_channels: int = 3) -> list[nn.Module]:
    """A VGG-style network as blocks: one per width (conv 3x3 - BN - ReLU - max-pool 2x2), then a
    head block (global average pool, linear)."""
    blocks: list[nn.Module] = []
    for width in widths:
        blocks.append(
            nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )
        )
        in_channels = width
    blocks.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes)))
    return blocks


def split_at_pools(model: nn.Sequential) -> list[nn.Module]:
    """Blocks of a zoo-style `Sequential(features, head...)`: the features are cut after every
    MaxPool2d but the last; the last cut's layers and the head form the final block. The blocks
    share the model's modules (training them trains the model). Chained, they compute model(x)."""
    features, head = model[0], list(model)[1:]
    if not isinstance(features, nn.Sequential):
        raise ValueError("expected Sequential(features, ...) with features an nn.Sequential")
    blocks, current = [], []
    for layer in features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            blocks.append(current)
            current = []
    if len(blocks) < 2:
        raise ValueError("need at least two MaxPool2d layers in the features to make two blocks")
    last = blocks.pop() + current + head
    return [nn.Sequential(*b) for b in blocks] + [nn.Sequential(*last)]


class SyntheticGradient(nn.Module):
    """Predicts dL/dh from h [N, C, H, W] (and, if `num_classes` > 0, the one-hot labels as extra
    planes): conv 3x3 - ReLU - conv 3x3. The last conv starts at zero, so the first predictions are
    zero (blocks start by not moving) and the predictor learns from its targets."""

    def __init__(self, channels: int, num_classes: int = 0, hidden: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        hidden = hidden or channels
        self.body = nn.Sequential(
            nn.Conv2d(channels + num_classes, hidden, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.out = nn.Conv2d(hidden, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            planes = F.one_hot(labels, self.num_classes).to(h.dtype)[:, :, None, None]
            h = torch.cat([h, planes.expand(-1, -1, h.shape[2], h.shape[3])], dim=1)
        return self.out(self.body(h))


def _score_fn(blocks: Sequence[nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    def score(x: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            block.eval()
            x = block(x)
        return x

    return score


def _output_channels(blocks: Sequence[nn.Module], sample: torch.Tensor) -> list[int]:
    """Channels of each non-final block's output, from one no-grad pass over a small sample."""
    channels = []
    with torch.no_grad():
        for block in blocks[:-1]:
            block.eval()
            sample = block(sample)
            if sample.dim() != 4:
                raise ValueError(f"synthetic gradients need NCHW block outputs, got shape {tuple(sample.shape)}")
            channels.append(sample.shape[1])
    return channels


def train_synthetic(
    model_blocks: Sequence[nn.Module],
    data: TrainData,
    steps: int,
    *,
    opts: LoopOptions = LoopOptions(),
    sg_lr: float = SG_LR,
    condition_on_labels: bool = False,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    on_eval: Callable[[EvalPoint], None] | None = None,
) -> History:
    """Train `model_blocks` IN PLACE (moved to opts.device) with synthetic gradients (see the module
    docstring). Each block gets `make_optimizer(params)` (default Adam at opts.lr); the predictors
    Adam at `sg_lr`. History.extra holds `predictor_mse` (the regression loss, mean over the last
    `eval_every` steps) and `top_predictor_cosine` (see top_predictor_cosine)."""
    if len(model_blocks) < 2:
        raise ValueError("synthetic gradients need at least two blocks")
    feed = Feed(data, opts)
    for block in model_blocks:
        block.to(feed.device)
    torch.manual_seed(opts.seed)  # the predictors' initial weights
    ncls = feed.num_classes if condition_on_labels else 0
    sgs = [SyntheticGradient(c, ncls).to(feed.device) for c in _output_channels(model_blocks, feed.sample)]
    opts_ = [(make_optimizer or adam(opts.lr))(b.parameters()) for b in model_blocks]
    sg_opt = torch.optim.Adam([p for m in sgs for p in m.parameters()], lr=sg_lr)
    sg_log: list[float] = []

    def step_fn(_: int) -> tuple[float, float]:
        x, y = feed.next()
        out = synthetic_step(model_blocks, sgs, opts_, x, y)
        sg_opt.zero_grad(set_to_none=True)
        out.predictor_loss.backward()
        sg_opt.step()
        sg_log.append(float(out.predictor_loss.detach()))
        return out.loss, float((out.scores.argmax(1) == y).float().mean())

    history = run_loop(
        "synthetic gradients", step_fn, lambda: feed.accuracy(_score_fn(model_blocks)),
        steps=steps, eval_every=opts.eval_every, eval_size=feed.eval_size, on_eval=on_eval,
    )
    tail = sg_log[-max(1, opts.eval_every):]
    x, y = next(iter(feed.evalset))
    cosine = top_predictor_cosine(model_blocks, sgs[-1], x[:256], y[:256])
    extra = (("predictor_mse", sum(tail) / len(tail)), ("top_predictor_cosine", cosine))
    return replace(history, extra=history.extra + extra)


def top_predictor_cosine(
    blocks: Sequence[nn.Module], predictor: SyntheticGradient, x: torch.Tensor, y: torch.Tensor
) -> float:
    """Cosine similarity (whole batch flattened) between the top predictor's output and the true
    gradient of the loss w.r.t. the input of the last block, blocks in eval mode: 1 is a perfect
    direction, 0 is no better than noise."""
    with torch.no_grad():
        h = x
        for block in blocks[:-1]:
            h = block.eval()(h)
    h.requires_grad_(True)
    (true,) = torch.autograd.grad(F.cross_entropy(blocks[-1].eval()(h), y), h)
    with torch.no_grad():
        pred = predictor(h, y)
    return float(F.cosine_similarity(pred.flatten(), true.flatten(), dim=0))


@dataclass(frozen=True)
class SyntheticStep:
    loss: float  # the true cross-entropy of the last block, batch mean
    predictor_loss: torch.Tensor  # with its graph: sum over predictors of |pred - target|^2 / N
    scores: torch.Tensor  # the last block's logits (detached), for training accuracy


def synthetic_step(
    blocks: Sequence[nn.Module],
    predictors: Sequence[SyntheticGradient],
    optimizers: Sequence[torch.optim.Optimizer],
    x: torch.Tensor,
    y: torch.Tensor,
) -> SyntheticStep:
    """One decoupled step: every block updates (its optimizer steps) from its predictor's
    gradient, the last from the true loss. The caller minimises the returned predictor_loss."""
    sgs, opts = predictors, optimizers
    h, prev_pred, sg_losses, loss = x, None, [], 0.0
    for k, (block, opt) in enumerate(zip(blocks, opts)):
        block.train()
        inp = h.detach().requires_grad_(k > 0)
        out = block(inp)
        opt.zero_grad(set_to_none=True)
        if k + 1 < len(blocks):
            pred = sgs[k](out.detach(), y)
            out.backward(pred.detach())  # the block updates now, from the predicted gradient
        else:
            true_loss = F.cross_entropy(out, y)
            true_loss.backward()
            loss = float(true_loss.detach())
        opt.step()
        if prev_pred is not None:
            # inp.grad: the gradient block k sent down; block k-1's predictor regresses onto it.
            # Both are gradients of a batch-mean loss, so they scale like 1/N: sum per element, / N.
            sg_losses.append(F.mse_loss(prev_pred, inp.grad, reduction="sum") / len(y))
        prev_pred, h = (pred if k + 1 < len(blocks) else None), out
    return SyntheticStep(loss, torch.stack(sg_losses).sum(), h.detach())


# `effconv train SPEC --synthetic-gradients` ---------------------------------------------------------
def check_synthetic(spec, config, distributed: bool = False) -> None:
    """UsageError (exit 2) unless `spec` and `config` can be trained with synthetic gradients."""
    from effconv.errors import UsageError

    where = "--synthetic-gradients"
    if spec.family != "vgg":
        raise UsageError(f"{where} trains VGG-family specs (cut at their max pools); {spec.name} is {spec.family!r}")
    unsupported = {
        "schedule": config.schedule != "constant", "precision": config.precision != "fp32",
        "label_smoothing": config.label_smoothing > 0, "compile": config.compile,
    }
    named = [k for k, bad in unsupported.items() if bad]
    if named or distributed:
        what = ", ".join(named) or "torchrun (DDP)"
        raise UsageError(f"{where} supports a constant rate, fp32, no label smoothing, no compile, one process; not: {what}")


def run_synthetic(setup) -> "TrainResult":  # noqa: F821 (imported inside: torch-heavy)
    """Train `setup.model` (a zoo VGG) with synthetic gradients on the run's data and options
    (steps, batch, optimizer and rate, augmentation, seed, eval_every, eval_subset).

    The run directory holds what a normal run writes except last.pt: config.json (written by the
    caller, `synthetic_gradients` true), metrics.jsonl/.csv with one row per evaluation, best.pt
    (weights at the best test accuracy, so export and load_run work) and curve.png. Without last.pt
    such a run cannot be resumed."""
    from effconv.training import checkpoint as ckpt
    from effconv.training.loop import run_meta
    from effconv.training.metrics import MetricsLog, MetricsRow, Progress
    from effconv.training.optim import build_optimizer
    from effconv.training.session import TrainResult

    cfg, run_dir = setup.config, setup.run_dir
    check_synthetic(setup.spec, cfg, setup.runtime.distributed)
    opts = LoopOptions(
        cfg.batch_size, cfg.lr, cfg.eval_every, cfg.seed, cfg.augment, cfg.eval_subset, str(setup.runtime.device)
    )
    log, best = MetricsLog(run_dir), {"acc": None}
    progress = Progress(setup.total_steps, 0, quiet=setup.quiet, title=setup.spec.name)

    def on_eval(p: EvalPoint) -> None:
        prev = log.rows[-1] if log.rows else None
        images = (p.step - (prev.step if prev else 0)) * cfg.batch_size
        seconds = p.seconds - (prev.elapsed if prev else 0.0)
        row = MetricsRow(p.step, p.loss, p.train_accuracy, p.accuracy, cfg.lr, images / max(seconds, 1e-9), p.seconds)
        log.add(row)
        if best["acc"] is None or p.accuracy > best["acc"]:
            best["acc"] = p.accuracy
            meta = run_meta(setup, "best", step=p.step, test_acc=p.accuracy, best_acc=p.accuracy, elapsed=p.seconds)
            ckpt.save_checkpoint(run_dir / ckpt.BEST, {**meta, "model": setup.model.state_dict()})
        log.write()
        progress.update(row, best["acc"])

    try:
        train_synthetic(split_at_pools(setup.model), setup.data, setup.total_steps, opts=opts,
                        make_optimizer=lambda params: build_optimizer(params, cfg), on_eval=on_eval)
    finally:
        progress.close()
    from effconv.training.plots import plot_training_curve

    plot_training_curve(log.rows, run_dir / "curve.png", title=setup.run_id)
    rows = tuple(log.rows)
    return TrainResult(
        run_dir=run_dir, run_id=setup.run_id, step=rows[-1].step, total_steps=setup.total_steps,
        test_acc=rows[-1].test_acc, best_acc=best["acc"], rows=rows,
        images_per_s=sum(r.images_per_s for r in rows) / len(rows), elapsed=rows[-1].elapsed,
    )
