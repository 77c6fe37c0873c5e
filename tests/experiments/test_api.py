"""effconv.experiments.api and the experiment CLI: a plan over budget and bad input are refused
with one line and the documented exit code before any run folder is written (or, with rates
given, before the data is even read)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from effconv.errors import EXIT_RESOURCE, ResourceLimitError
from effconv.experiments import api
from effconv.experiments.plan import Rate, Rates
from effconv.experiments.studies import RunOptions

TINY = ["--scale", "0.0003", "--width-mult", "0.125", "--evals", "2", "--eval-images", "100", "--batch-size", "16",
        "--threads", "1"]


def test_over_budget_is_refused_before_the_data_is_read(tmp_path):
    fast, slow = (Rate(alone_s=s, eval_s=0.5, start_s=2.0, close_s=0.3) for s in (0.010, 0.028))
    rates = Rates({"vgg19_3x3": fast, "vgg19_5x5": slow, "vgg14_mixed": fast}, 1.0, 3, "test")  # 5x5 alone: 572 s
    request = api.ExperimentRequest(("kernel-size",), out=tmp_path / "out", data=tmp_path / "no-data-here",
                                    options=RunOptions(), pack=3, budget_s=300.0)
    with pytest.raises(ResourceLimitError, match=r"plan over budget: kernel-size/5x5 \(572 s alone\) cannot") as info:
        api.run(request, rates=rates)  # reading the data would fail differently: it is not read
    assert info.value.exit_code == EXIT_RESOURCE == 4 and "--allow-over-budget" in str(info.value)
    assert not (tmp_path / "out").exists()


def _png_tree(root):
    """An ImageFolder tree of 200 + 100 small synthetic images (decodes in a moment)."""
    from PIL import Image

    from effconv.data import CLASSES

    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("test", 100)):
        for i in range(n):
            folder = root / split / CLASSES[i % 10]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


def test_cli_probes_then_refuses_a_plan_over_budget(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCONV_CACHE", str(tmp_path / "cache"))
    tree, out = _png_tree(tmp_path / "pngs"), tmp_path / "out"
    res = cli("experiment", "run", "kernel-size", *TINY, "--pack", "3", "--budget-s", "0.5", "--probe-s", "0.05",
              "--data", tree, "--out", out)
    assert res.code == 4 and "Traceback" not in res.stderr
    line = [x for x in res.stderr.splitlines() if x.strip()][-1]
    assert "plan over budget: kernel-size/" in line and "--budget-s 0.5" in line
    assert not out.exists()  # the probe trained in a temporary folder, nothing here


@pytest.mark.parametrize(("args", "message"), [
    (["experiment", "run", "kernel-size", "--pack", "0"], "--pack"),
    (["experiment", "run", "all", "--budget-s", "0"], "--budget-s"),
    (["experiment", "plan", "all", "--probe-s", "-1"], "--probe-s"),
    (["experiment", "plan", "nope"], "experiment"),
    (["experiment", "run", "all", "--precision", "fp64"], "--precision"),
    (["experiment", "report", "all"], "experiment"),
])
def test_cli_bad_input_is_one_line_exit_2(cli, tmp_path, args, message):
    res = cli(*args, "--out", tmp_path / "out")
    assert res.code == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_folder_of_another_scale_is_refused_before_the_data(cli, tmp_path):
    run = tmp_path / "out" / "momentum"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"total_steps": 999}))
    empty = tmp_path / "empty"
    empty.mkdir()  # not CIFAR-10: reading it would fail with another message
    res = cli("experiment", "run", "optimizer", "--pack", "2", "--scale", "0.01", "--data", empty, "--out", tmp_path / "out")
    assert res.code == 2 and "999 steps" in res.stderr
