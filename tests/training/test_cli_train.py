"""`effconv train` end to end on a zoo family: run files, exit codes, load_run, resume, DDP with gloo."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from effconv.training import checkpoint as ckpt
from effconv.data.batches import EvalBatches


@pytest.fixture(scope="module")
def setup(tmp_path_factory, kit):
    """A tiny spec file and a PNG ImageFolder of synthetic data (shared by the tests here)."""
    root = tmp_path_factory.mktemp("cli")
    data = kit.tiny_data(64, 32)
    return kit, kit.write_tiny_spec(root), kit.write_png_tree(root / "pngs", data), data


def test_train_prints_accuracy_and_checks_target(cli, setup, tmp_path):
    kit, spec, pngs, data = setup
    run = tmp_path / "run"
    res = cli("train", spec, "--data", pngs, "--out", run, "--quiet", "--deterministic", "--target-acc", "99.5")
    assert res.code == 1, res.stderr
    assert "test accuracy" in res.stdout and "below the target 99.50%" in res.stderr
    assert {"config.json", "metrics.jsonl", "metrics.csv", "last.pt", "best.pt", "curve.png"} <= {p.name for p in run.iterdir()}
    # load_run gives back the best model: its accuracy on the test images is the recorded best
    loaded = ckpt.load_run(run)
    assert not loaded.model.training and loaded.spec.name == "tiny_mobilenet" and loaded.run_id == "run"
    with torch.no_grad():
        correct = sum((loaded.model(x).argmax(1) == y).sum().item() for x, y in EvalBatches(data.test, torch.device("cpu")))
    assert correct / len(data.test) == pytest.approx(loaded.meta["best_acc"])


def test_resume_extends_a_finished_run(cli, setup, tmp_path):
    kit, spec, pngs, _ = setup
    run = tmp_path / "run"
    assert cli("train", spec, "--data", pngs, "--out", run, "--quiet", "--steps", "2").code == 0
    res = cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert res.code == 0, res.stderr
    assert "(step 4/4" in res.stdout
    assert cli("train", "--resume", run, "--lr", "0.1").code == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["no_such_model"], "unknown model"),
        (["{spec}", "--optimizer", "adamw"], "use one of adam"),
        (["{spec}", "--data", "{missing}"], "--data"),
        (["{spec}", "--norm", "nonsense"], "norm"),
        ([], "give a model"),
    ],
)
def test_usage_errors_exit_2(cli, setup, tmp_path, args, message):
    _, spec, _, _ = setup
    args = [a.format(spec=spec, missing=tmp_path / "missing") for a in args]
    res = cli("train", *args, "--out", tmp_path / "run", "--quiet")
    assert res.code == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_ddp_two_gloo_processes_match_one(setup, tmp_path, cli):
    """torchrun --nproc-per-node 2 (gloo, CPU): each rank trains on half of every global batch."""
    kit, spec, pngs, _ = setup
    common = [str(spec), "--data", str(pngs), "--quiet", "--deterministic", "--steps", "3"]
    assert cli("train", *common, "--out", tmp_path / "single").code == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "effconv", "train", *common, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("test accuracy") == 1  # rank 0 reports, rank 1 stays quiet
    single = kit.weights(tmp_path / "single" / ckpt.LAST)
    ddp = kit.weights(tmp_path / "ddp" / ckpt.LAST)
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5)
    assert ckpt.load_checkpoint(tmp_path / "ddp" / ckpt.LAST)["step"] == 3


def test_fp16_without_a_gpu_is_refused_before_loading(cli, monkeypatch, tmp_path):
    """Refused before the data is read (an empty folder would be exit 3 "no CIFAR-10 here")."""
    from effconv.cli import validate

    monkeypatch.setattr(validate, "gpu_missing", lambda: "no NVIDIA GPU (test)")
    res = cli("train", "resnet20", "--precision", "fp16", "--data", tmp_path, "--out", tmp_path / "run")
    assert res.code == 2 and "needs a CUDA device" in res.stderr, res.stderr
    assert not (tmp_path / "run").exists()
