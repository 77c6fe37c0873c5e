"""Optimizers and learning-rate schedules, looked up by name (plain dicts of factories)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from effconv.training.config import TrainConfig

ONECYCLE_WARMUP = 0.3  # fraction of the steps spent rising to the peak rate
ONECYCLE_START = 0.04  # starting rate as a fraction of the peak (peak / 25)


def _adam(params, c: TrainConfig):
    return torch.optim.Adam(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)


def _sgd(params, c: TrainConfig):
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=c.weight_decay)


def _rmsprop(params, c: TrainConfig):
    # alpha (the squared-gradient average's decay) stays at torch's 0.99
    return torch.optim.RMSprop(params, lr=c.lr, eps=c.eps, momentum=c.momentum, weight_decay=c.weight_decay)


def _adagrad(params, c: TrainConfig):
    return torch.optim.Adagrad(params, lr=c.lr, eps=c.eps, weight_decay=c.weight_decay)


OPTIMIZERS: dict[str, Callable[[Iterable, TrainConfig], torch.optim.Optimizer]] = {
    "adam": _adam,
    "sgd": _sgd,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
}


def build_optimizer(params: Iterable, config: TrainConfig) -> torch.optim.Optimizer:
    if config.nesterov and config.optimizer == "sgd" and config.momentum <= 0:
        from effconv.errors import UsageError

        raise UsageError("nesterov needs momentum > 0")
    return OPTIMIZERS[config.optimizer](params, config)


def _constant(t: float) -> float:
    return 1.0


def _cosine(t: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t))


def _onecycle(t: float) -> float:
    """Linear rise from ONECYCLE_START to 1 over the warm-up, then linear fall to 0."""
    if t < ONECYCLE_WARMUP:
        return ONECYCLE_START + (1.0 - ONECYCLE_START) * t / ONECYCLE_WARMUP
    return max(0.0, (1.0 - t) / (1.0 - ONECYCLE_WARMUP))


SCHEDULES: dict[str, Callable[[float], float]] = {"constant": _constant, "cosine": _cosine, "onecycle": _onecycle}


class LrFactor:
    """Multiplier of the peak rate at a step: SCHEDULES[kind](step / total). Plain attributes only,
    so LambdaLR's state_dict stays loadable with weights_only=True."""

    def __init__(self, kind: str, total: int) -> None:
        self.kind, self.total = kind, max(1, total)

    def __call__(self, step: int) -> float:
        return SCHEDULES[self.kind](min(step, self.total) / self.total)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LrFactor(config.schedule, total_steps))
