"""Packed runs on CPU (effconv.experiments.pack, packed_trainer, driven through experiments.api).

Tiny: the kernel-size study's three VGG runs narrowed 8x, 6 steps of batch 16 on 200 random
images, 2 evaluations on 100, deterministic, one thread. The oracle is the plain runner
(effconv.experiments.runner.run_experiment, one run after the other through effconv.training.api):
a pack must give the same metrics, the same checkpoints, and resume exactly after a Ctrl-C or a
budget cut. The rates are given (no probe): what they predict is tested in test_plan.py, how well
in benchmarks/train_speed.py --plan.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from effconv.data import CLASSES, CifarArrays
from effconv.errors import Interrupted
from effconv.experiments import api
from effconv.experiments.plan import Rate, Rates
from effconv.experiments.runner import run_experiment
from effconv.experiments.studies import RunOptions
from effconv.training.api import TrainData
from effconv.training.checkpoint import load_checkpoint

OPTIONS = RunOptions(scale=0.0003, width_mult=0.125, evals=2, eval_images=100, batch_size=16, threads=1, deterministic=True)
LABELS = ("3x3", "5x5", "mixed")
STEPS = 6  # 20,000 x 0.0003
TINY = Rate(alone_s=0.01, eval_s=0.05, start_s=0.2, close_s=0.1)
RATES = Rates({m: TINY for m in ("vgg19_3x3", "vgg19_5x5", "vgg14_mixed")}, factor=1.0, together=3, device="cpu")


def _random(n: int, seed: int) -> CifarArrays:
    rng = np.random.default_rng(seed)
    return CifarArrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n), CLASSES)


@pytest.fixture(scope="module")
def data() -> TrainData:
    return TrainData(_random(200, 0), _random(100, 1), "synthetic")


@pytest.fixture(scope="module")
def alone(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("alone")
    run_experiment("kernel-size", OPTIONS, root, data=data)
    return root


def _request(out, **kw) -> api.ExperimentRequest:
    return api.ExperimentRequest(("kernel-size",), out=out, options=OPTIONS, pack=3, **kw)


def _rows(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _windows(rows) -> dict[int, tuple[float, float]]:
    """Per evaluated step: the loss and train accuracy summed over the steps since the previous
    evaluation (a stop adds a row at its step, so an interrupted run's rows window differently)."""
    out, prev, loss, acc = {}, 0, 0.0, 0.0
    for r in rows:
        loss, acc, prev = loss + r["loss"] * (r["step"] - prev), acc + r["train_acc"] * (r["step"] - prev), r["step"]
        if r["test_acc"] is not None:
            out[r["step"]], loss, acc = (loss, acc), 0.0, 0.0
    return out


def _assert_same_run(a, b) -> None:
    ra, rb = _rows(a), _rows(b)
    assert ra[-1]["step"] == rb[-1]["step"] == STEPS
    assert [(r["step"], r["test_acc"]) for r in ra if r["test_acc"] is not None] == \
        [(r["step"], r["test_acc"]) for r in rb if r["test_acc"] is not None]
    wa, wb = _windows(ra), _windows(rb)
    for step, (loss, acc) in wa.items():
        assert wb[step][0] == pytest.approx(loss, abs=1e-5) and wb[step][1] == pytest.approx(acc, abs=1e-5)
    if len(ra) == len(rb):  # not interrupted: the same rows
        assert [r["step"] for r in ra] == [r["step"] for r in rb]
        assert [r["loss"] for r in rb] == pytest.approx([r["loss"] for r in ra], abs=1e-5)
    la, lb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    for name, tensor in la["model"].items():
        torch.testing.assert_close(lb["model"][name], tensor, rtol=0, atol=1e-6)
    assert la["data"]["pos"] == lb["data"]["pos"] and torch.equal(la["data"]["order"], lb["data"]["order"])
    assert torch.equal(la["data"]["generator"], lb["data"]["generator"])
    sa, sb = la["optimizer"]["state"], lb["optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k]["step"], sb[k]["step"]) for k in sa)
    assert la["optimizer"]["param_groups"] == lb["optimizer"]["param_groups"]


def test_a_pack_of_three_trains_each_run_as_alone(alone, data, tmp_path):
    outcome = api.run(_request(tmp_path), data=data, rates=RATES)
    assert [e.status for e in outcome.ends] == ["complete"] * 3 and len(outcome.plan.visits) == 1
    assert all(e.graph == "not a CUDA device" for e in outcome.ends)
    for label in LABELS:
        _assert_same_run(alone / label, tmp_path / label)
        meta = json.loads((tmp_path / label / "experiment.json").read_text())
        assert meta["status"] == "complete" and meta["pack"]["slots"] == 3 and "stopped" not in meta
    runs = outcome.summaries["kernel-size"]
    assert [r.label for r in runs] == list(LABELS) and all(r.step_seconds == TINY.alone_s for r in runs)


class _Counter:
    """A clock that advances one second per reading: the budget cut lands on a fixed round."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.mark.parametrize("how", ["ctrl-c", "budget"])
def test_an_interrupted_pack_resumes_exactly(alone, data, tmp_path, how):
    if how == "ctrl-c":
        rounds = []

        def on_round(steps):  # SIGINT once every run has its first checkpoint (step 3)
            rounds.append(steps)
            if len(rounds) == 4:
                os.kill(os.getpid(), signal.SIGINT)

        with pytest.raises(Interrupted, match="3 runs saved their progress"):
            api.run(_request(tmp_path), data=data, rates=RATES, on_round=on_round)
    else:
        outcome = api.run(_request(tmp_path, budget_s=10.0), data=data, rates=RATES, clock=_Counter())
        assert {e.status for e in outcome.ends} == {"cut"}
        assert all(0 < e.step < STEPS for e in outcome.ends)
    for label in LABELS:
        meta = json.loads((tmp_path / label / "experiment.json").read_text())
        step = _rows(tmp_path / label)[-1]["step"]
        assert meta["status"] == "partial" and f"at step {step} of {STEPS}" in meta["stopped"] and 0 < step < STEPS
    outcome = api.run(_request(tmp_path), data=data, rates=RATES)  # the same call again: resumes
    assert [e.status for e in outcome.ends] == ["complete"] * 3
    for label in LABELS:
        _assert_same_run(alone / label, tmp_path / label)


def test_all_trains_the_shared_runs_once_and_copies_them(data, tmp_path):
    """Of kernel-size and activation (7 runs), activation/relu is kernel-size/3x3: 6 trained, 1 copied."""
    request = api.ExperimentRequest(("kernel-size", "activation"), out=tmp_path, options=OPTIONS, pack=6)
    rates = Rates({m: TINY for m in ("vgg19_3x3", "vgg19_5x5", "vgg14_mixed", "vgg19_3x3_swish", "vgg19_3x3_elu",
                                     "vgg19_3x3_crelu")}, 1.0, 6, "cpu")
    outcome = api.run(request, data=data, rates=rates)
    assert len(outcome.ends) == 6 and outcome.copied == ("activation/relu",)
    a, b = tmp_path / "kernel-size" / "3x3", tmp_path / "activation" / "relu"
    assert _rows(a) == _rows(b) and (a / "last.pt").read_bytes() == (b / "last.pt").read_bytes()
    meta = json.loads((b / "experiment.json").read_text())
    assert (meta["experiment"], meta["label"], meta["same_run_as"]) == ("activation", "relu", str(a))
    assert [r.label for r in outcome.summaries["activation"]] == ["relu", "swish", "elu", "crelu"]
