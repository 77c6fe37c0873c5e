"""TrainConfig validation, optimizer lookup and the learning-rate schedules' closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from effconv.errors import UsageError
from effconv.specs import load_spec
from effconv.training.config import TrainConfig, config_from_dict, config_from_table
from effconv.training.optim import ONECYCLE_START, ONECYCLE_WARMUP, build_optimizer, build_scheduler


def test_defaults_are_adams_published_ones():
    c = TrainConfig()
    assert (c.optimizer, c.lr, c.betas, c.eps, c.schedule) == ("adam", 0.001, (0.9, 0.999), 1e-8, "constant")


def test_zoo_recipe_loads():
    spec = load_spec("vgg19_3x3")
    c = config_from_table(spec.train, source=spec.source)
    assert (c.optimizer, c.lr, c.steps, c.batch_size) == ("adam", spec.train["lr"], spec.train["steps"], 128)


@pytest.mark.parametrize(
    "table,match",
    [
        ({"lerning_rate": 0.1}, "unknown \\[train\\] key 'lerning_rate'"),
        ({"optimizer": "adamw"}, "optimizer = 'adamw': use one of adam, sgd"),
        ({"lr": "fast"}, "lr = 'fast': expected float"),
        ({"batch_size": 0}, "batch_size = 0: must be > 0"),
        ({"batch_size": 1.5}, "batch_size = 1.5: expected int"),
        ({"steps": 10, "epochs": 2}, "both 'steps' and 'epochs'"),
        ({"betas": [0.9]}, "betas"),
        ({"nesterov": "yes"}, "nesterov = 'yes': expected bool"),
    ],
)
def test_bad_tables_name_the_file_and_key(table, match):
    with pytest.raises(UsageError, match=match) as err:
        config_from_table(table, source="models/x.toml")
    assert str(err.value).startswith("models/x.toml: ") and err.value.exit_code == 2


def test_overrides_win_and_steps_replaces_epochs():
    c = config_from_table({"epochs": 3, "lr": 0.1}, {"steps": 50, "lr": None, "seed": 4})
    assert (c.steps, c.epochs, c.lr, c.seed) == (50, None, 0.1, 4)
    assert config_from_dict(c.to_dict()) == c


@pytest.mark.parametrize("steps,epochs,n,subset,want", [(7, None, 1000, None, 7), (None, 2, 1000, None, 14), (None, 3, 1000, 256, 6), (None, None, 10, None, TrainConfig.DEFAULT_STEPS)])
def test_total_steps(steps, epochs, n, subset, want):
    assert TrainConfig(steps=steps, epochs=epochs, batch_size=128, subset=subset).total_steps(n) == want


@pytest.mark.parametrize(
    "name,cls,check",
    [
        ("adam", torch.optim.Adam, lambda g: g["betas"] == (0.5, 0.6) and g["eps"] == 1e-3),
        ("sgd", torch.optim.SGD, lambda g: g["momentum"] == 0.8 and g["nesterov"] is True),
        ("rmsprop", torch.optim.RMSprop, lambda g: g["momentum"] == 0.8 and g["eps"] == 1e-3),
        ("adagrad", torch.optim.Adagrad, lambda g: g["eps"] == 1e-3),
    ],
)
def test_optimizers_by_name(name, cls, check):
    c = TrainConfig(optimizer=name, lr=0.05, betas=(0.5, 0.6), eps=1e-3, momentum=0.8, nesterov=True, weight_decay=1e-4)
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], c)
    group = opt.param_groups[0]
    assert type(opt) is cls and group["lr"] == 0.05 and group["weight_decay"] == 1e-4 and check(group)


def _lrs(schedule: str, total: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = build_scheduler(opt, TrainConfig(schedule=schedule, lr=0.1), total)
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(
    "schedule,formula",
    [
        ("constant", lambda t: 1.0),
        ("cosine", lambda t: 0.5 * (1 + math.cos(math.pi * t))),
        ("onecycle", lambda t: ONECYCLE_START + (1 - ONECYCLE_START) * t / ONECYCLE_WARMUP if t < ONECYCLE_WARMUP else (1 - t) / (1 - ONECYCLE_WARMUP)),
    ],
)
def test_schedules_follow_their_closed_form(schedule, formula):
    total = 20
    got = _lrs(schedule, total)
    want = [0.1 * formula(s / total) for s in range(total + 1)]
    assert got == pytest.approx(want, abs=1e-12)
