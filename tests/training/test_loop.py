"""The training loop's contracts: exact resume, Ctrl-C, non-finite loss, unwritable or full output.

Oracle for resume: an uninterrupted run of the same configuration, compared bit for bit.
"""

from __future__ import annotations

import errno
import json
import os
import signal

import pytest
import torch

from effconv.training import checkpoint as ckpt
from effconv.errors import CheckFailedError, Interrupted, ResourceLimitError, UsageError
from effconv.specs import load_spec
from effconv.training.api import TrainConfig, resume, train

SPEC = load_spec("resnet20")  # names the run; the tests pass their own tiny model
CFG = TrainConfig(steps=12, batch_size=16, eval_every=4, log_every=2, deterministic=True, seed=3, lr=0.01)


def _interrupt_at(step_to_stop: int, times: int = 1):
    def hook(step: int) -> None:
        if step == step_to_stop:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return hook


def _straight(kit, tmp_path):
    result = train(SPEC, CFG, data=kit.tiny_data(), out=tmp_path / "straight", model=kit.TinyNet())
    return result, kit.weights(tmp_path / "straight" / ckpt.LAST)


@pytest.mark.parametrize("stop_at", [5, 8])  # mid-window, and right after an evaluation
def test_interrupt_then_resume_is_bit_identical(kit, tmp_path, stop_at):
    straight, want = _straight(kit, tmp_path)
    run = tmp_path / "interrupted"
    with pytest.raises(Interrupted) as err:
        train(SPEC, CFG, data=kit.tiny_data(), out=run, model=kit.TinyNet(), on_step=_interrupt_at(stop_at))
    assert err.value.exit_code == 130 and f"--resume {run}" in str(err.value)
    assert ckpt.load_checkpoint(run / ckpt.LAST)["step"] == stop_at
    resumed = resume(run, data=kit.tiny_data(), model=kit.TinyNet(seed=123))  # init is overwritten
    kit.assert_bit_identical(kit.weights(run / ckpt.LAST), want)
    assert (resumed.step, resumed.test_acc, resumed.best_acc) == (12, straight.test_acc, straight.best_acc)
    evals = lambda rows: [(r.step, r.test_acc) for r in rows if r.test_acc is not None]  # noqa: E731
    assert evals(resumed.rows) == evals(straight.rows)


def test_run_directory_contents(kit, tmp_path):
    result, _ = _straight(kit, tmp_path)
    run = result.run_dir
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["steps"] == 12 and config["total_steps"] == 12 and config["spec"]["name"] == "resnet20"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    assert [r["test_acc"] is not None for r in rows] == [False, True, False, True, False, True]
    header, *lines = (run / "metrics.csv").read_text().splitlines()
    assert header == "step,loss,train_acc,test_acc,lr,images_per_s,elapsed" and len(lines) == 6
    assert (run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = ckpt.load_checkpoint(run / ckpt.BEST)
    assert best["test_acc"] == max(r["test_acc"] for r in rows if r["test_acc"] is not None)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_refuses_to_overwrite_a_run(kit, tmp_path):
    _straight(kit, tmp_path)
    with pytest.raises(UsageError, match="already holds a run"):
        train(SPEC, CFG, data=kit.tiny_data(), out=tmp_path / "straight", model=kit.TinyNet())


def test_second_ctrl_c_exits_at_once(kit, tmp_path):
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the test process runs in the background
    with pytest.raises(KeyboardInterrupt):
        train(SPEC, CFG, data=kit.tiny_data(), out=run, model=kit.TinyNet(), on_step=_interrupt_at(6, times=2))
    assert ckpt.load_checkpoint(run / ckpt.LAST)["step"] == 4  # the evaluation's checkpoint; nothing newer
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(kit, tmp_path):
    model = kit.TinyNet()

    def poison(step: int) -> None:
        if step == 6:
            with torch.no_grad():
                model[-1].weight.fill_(float("nan"))

    run = tmp_path / "run"
    with pytest.raises(CheckFailedError, match="non-finite") as err:
        train(SPEC, CFG, data=kit.tiny_data(), out=run, model=model, on_step=poison)
    assert err.value.exit_code == 1 and "(step 4)" in str(err.value)
    last = ckpt.load_checkpoint(run / ckpt.LAST)
    assert last["step"] == 4 and all(torch.isfinite(t).all() for t in last["model"].values())


@pytest.mark.parametrize("make_out", [lambda tmp: tmp / "file.txt" / "run", lambda tmp: "/sys/effconv-test-run"])
def test_unwritable_output_is_a_clear_error(kit, tmp_path, make_out):
    (tmp_path / "file.txt").write_text("in the way")
    with pytest.raises(UsageError, match="cannot create the run directory"):
        train(SPEC, CFG, data=kit.tiny_data(), out=make_out(tmp_path), model=kit.TinyNet())


def test_full_disk_never_corrupts_the_last_checkpoint(kit, tmp_path, monkeypatch):
    real_write, calls = ckpt._write, []

    def write(path, data):
        calls.append(path)
        if len(calls) > 2:  # best.pt and last.pt at step 4 succeed; the disk is full after that
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(ckpt, "_write", write)
    run = tmp_path / "run"
    with pytest.raises(ResourceLimitError) as err:
        train(SPEC, CFG, data=kit.tiny_data(), out=run, model=kit.TinyNet())
    assert err.value.exit_code == 4
    assert ckpt.load_checkpoint(run / ckpt.LAST)["step"] == 4
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def test_checkpoint_loads_with_weights_only(kit, tmp_path):
    _straight(kit, tmp_path)
    payload = torch.load(tmp_path / "straight" / ckpt.LAST, weights_only=True)
    assert payload["format"] == ckpt.FORMAT and payload["step"] == 12


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "cosine"), ("rmsprop", "onecycle"), ("adagrad", "cosine")])
def test_other_optimizers_and_schedules_learn(kit, tmp_path, optimizer, schedule):
    config = TrainConfig(steps=30, batch_size=32, eval_every=30, log_every=10, lr=0.02 if optimizer != "sgd" else 0.1,
                         optimizer=optimizer, schedule=schedule, nesterov=optimizer == "sgd", label_smoothing=0.1)
    result = train(SPEC, config, data=kit.tiny_data(256), out=tmp_path / "r", model=kit.TinyNet())
    assert result.rows[-1].lr < 0.05 * config.lr  # both schedules end near zero
    assert result.rows[-1].loss < result.rows[0].loss
