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
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from effconv.compare import History, TensorData, accuracy, batches, run_loop


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


def _score_fn(blocks: Sequence[nn.Module]):
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
    data: TensorData,
    steps: int,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    sg_lr: float = 1e-3,
    condition_on_labels: bool = False,
    eval_every: int = 50,
    seed: int = 0,
) -> History:
    """Train `model_blocks` IN PLACE with synthetic gradients (see the module docstring); Adam for
    blocks (lr) and predictors (sg_lr). History.extra holds `predictor_mse` (the regression loss,
    mean over the last `eval_every` steps) and `top_predictor_cosine` (see top_predictor_cosine)."""
    if len(model_blocks) < 2:
        raise ValueError("synthetic gradients need at least two blocks")
    torch.manual_seed(seed)
    ncls = data.num_classes if condition_on_labels else 0
    sgs = [SyntheticGradient(c, ncls) for c in _output_channels(model_blocks, data.x_train[:2])]
    opts = [torch.optim.Adam(b.parameters(), lr=lr) for b in model_blocks]
    sg_opt = torch.optim.Adam([p for m in sgs for p in m.parameters()], lr=sg_lr)
    stream = batches(data, batch_size, seed)
    sg_log: list[float] = []

    def step_fn(_: int) -> float:
        x, y = next(stream)
        loss, sg_loss = synthetic_step(model_blocks, sgs, opts, x, y)
        sg_opt.zero_grad(set_to_none=True)
        sg_loss.backward()
        sg_opt.step()
        sg_log.append(float(sg_loss.detach()))
        return loss

    history = run_loop(
        "synthetic gradients", step_fn, lambda: accuracy(_score_fn(model_blocks), data.x_test, data.y_test),
        steps=steps, eval_every=eval_every, eval_size=len(data.y_test),
    )
    tail = sg_log[-max(1, eval_every):]
    cosine = top_predictor_cosine(model_blocks, sgs[-1], data.x_test[:256], data.y_test[:256])
    return _with_extra(history, ("predictor_mse", sum(tail) / len(tail)), ("top_predictor_cosine", cosine))


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


def synthetic_step(
    blocks: Sequence[nn.Module],
    predictors: Sequence[SyntheticGradient],
    optimizers: Sequence[torch.optim.Optimizer],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[float, torch.Tensor]:
    """One decoupled step: every block updates (its optimizer steps) from its predictor's
    gradient, the last from the true loss. Returns (true loss, predictors' regression loss with
    its graph, for the caller to minimise): sum over predictors of |pred - target|^2 / N."""
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
    return loss, torch.stack(sg_losses).sum()


def train_backprop(
    model_blocks: Sequence[nn.Module],
    data: TensorData,
    steps: int,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    eval_every: int = 50,
    seed: int = 0,
) -> History:
    """The baseline: the same blocks chained, trained IN PLACE by ordinary backprop with Adam."""
    torch.manual_seed(seed)
    model = nn.Sequential(*model_blocks)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    stream = batches(data, batch_size, seed)

    def step_fn(_: int) -> float:
        model.train()
        x, y = next(stream)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return run_loop(
        "backprop", step_fn, lambda: accuracy(_score_fn(model_blocks), data.x_test, data.y_test),
        steps=steps, eval_every=eval_every, eval_size=len(data.y_test),
    )


def compare_synthetic(
    data: TensorData, steps: int, *, widths: Sequence[int] = (32, 64, 128), seed: int = 0, **train_kwargs
) -> tuple[History, History]:
    """(synthetic gradients, backprop) from the same initial weights, batches and hyperparameters."""
    torch.manual_seed(seed)
    blocks = vgg_blocks(widths, data.num_classes, data.x_train.shape[1])
    sg_kwargs = {k: train_kwargs.pop(k) for k in ("sg_lr", "condition_on_labels") if k in train_kwargs}
    synthetic = train_synthetic(copy.deepcopy(blocks), data, steps, seed=seed, **train_kwargs, **sg_kwargs)
    baseline = train_backprop(copy.deepcopy(blocks), data, steps, seed=seed, **train_kwargs)
    return synthetic, baseline


def _with_extra(history: History, *items: tuple[str, float]) -> History:
    return replace(history, extra=history.extra + tuple(items))
