"""All four experiments end to end on real CIFAR-10 images, at a tiny scale that fits CI.

Scale 0.0002 of the paper's steps (VGG: 4 steps, AlexNet: 60), batch 16, 160 training images,
2 evaluations on 100 test images, models narrowed 8x (--width-mult 0.125: CI only; the full VGG-19
costs seconds per step on 2 cores), one torch thread. The numbers mean nothing; the plumbing does.
"""

from __future__ import annotations

import json

import pytest

from effconv.experiments.report import write_report
from effconv.experiments.runner import run_experiment
from effconv.experiments.studies import EXPERIMENTS, RunOptions
from effconv.experiments.verdicts import AGREES, DISAGREES, INCONCLUSIVE

OPTIONS = RunOptions(scale=0.0002, width_mult=0.125, evals=2, eval_images=100, batch_size=16, threads=1)
CLI_ARGS = ["--scale", "0.0002", "--width-mult", "0.125", "--evals", "2", "--eval-images", "100",
            "--batch-size", "16", "--threads", "1", "-q"]
LIBRARY_RUN = ("kernel-size", "activation", "batch-norm")  # optimizer goes through the CLI below


@pytest.fixture(scope="module")
def trained(cifar10, tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    return root, {name: run_experiment(name, OPTIONS, root / name, data=cifar10) for name in LIBRARY_RUN}


@pytest.fixture
def cached(cifar10, request, monkeypatch):
    """Point the CLI's data cache at the session's decoded copy, so --data does not decode again."""
    monkeypatch.setenv("EFFCONV_CACHE", str(request.config.cache.mkdir("effconv-cifar10")))


@pytest.mark.parametrize("name", LIBRARY_RUN)
def test_every_run_trains_on_real_images(trained, name):
    _, results = trained
    assert [r.label for r in results[name]] == [p.label for p in EXPERIMENTS[name].runs]
    for r in results[name]:
        assert r.status == "complete" and r.step == r.total_steps == 4
        assert r.test_images == 100 and 0.0 <= r.final_acc <= 1.0 and len(r.evals) == 2
        assert r.width_mult == 0.125 and r.wall_seconds > r.train_seconds > 0


@pytest.mark.parametrize("name", LIBRARY_RUN)
def test_report_judges_every_claim(trained, tmp_path, name):
    root, _ = trained
    report, path = write_report(name, root / name, tmp_path, costs=name == "kernel-size")
    assert len(report.findings) == len(EXPERIMENTS[name].claims)
    # at this scale and width nothing may be asserted: every verdict is inconclusive
    assert {f.verdict for _, f in report.findings} == {INCONCLUSIVE}
    assert all(f.leaning in (None, AGREES, DISAGREES) for _, f in report.findings)
    text = path.read_text()
    assert "JPEG re-encoding" in text and "pending a GPU" in text and "Width multiplier: 0.125" in text
    for fig in report.figures:
        assert (tmp_path / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if name == "kernel-size":  # weights from the profiler: the narrowed 5x5 net has 25/9 the 3x3 conv weights
        assert "| 5x5 | vgg19_5x5 |" in text


def test_finished_runs_are_skipped(trained):
    root, _ = trained
    steps = []
    runs = run_experiment("kernel-size", OPTIONS, root / "kernel-size", on_step=steps.append)
    assert steps == [] and all(r.status == "complete" for r in runs)


def test_optimizer_cli_run_resume_compare_report(cli, cifar_tar, cached, tmp_path):
    out = tmp_path / "optimizer"

    class Stop(Exception):
        pass

    def stop_at_30(step):  # interrupt the first run after its first checkpoint (step 30)
        if step == 31:
            raise Stop

    with pytest.raises(Stop):
        run_experiment("optimizer", OPTIONS, out, data_source=cifar_tar, on_step=stop_at_30)
    assert json.loads((out / "momentum" / "experiment.json").read_text())["status"] == "partial"
    done = cli("experiment", "run", "optimizer", "--out", out, "--data", cifar_tar, *CLI_ARGS)
    assert done.code == 0, done.stderr
    rows = [json.loads(x) for x in (out / "momentum" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["test_acc"] is not None] == [30, 60]  # resumed, not restarted

    res = cli("compare", out / "momentum", out / "adam", "--json", tmp_path / "c.json", "--csv", tmp_path / "c.csv",
              "--plots", tmp_path / "plots", "--latency-s", "0.1", "--target", "5")
    assert res.code == 0, res.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["target"] == 0.05 and [r["run"] for r in data["runs"]] == ["momentum", "adam"]
    for r in data["runs"]:
        assert r["steps"] == 60 and r["latency_ms"] > 0 and r["mult_adds"] > r["weights"] > 0
    assert data["runs"][0]["mult_adds"] == data["runs"][1]["mult_adds"]  # same network, other optimizer
    assert (tmp_path / "c.csv").read_text().splitlines()[0].startswith("run,spec,steps,final_acc")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["loss_vs_step.png", "test_acc_vs_step.png", "test_acc_vs_time.png"]

    rep = cli("experiment", "report", "optimizer", "--out", out, "--report-dir", tmp_path / "rep", "--no-costs")
    assert rep.code == 0, rep.stderr
    assert "Adam oscillates less" in (tmp_path / "rep" / "optimizer.md").read_text()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["experiment", "run", "nope"], 2, "unknown experiment"),
    (["experiment", "run", "optimizer", "--scale", "2"], 2, "--scale"),
    (["experiment", "report", "optimizer", "--out", "/nonexistent/x"], 2, "--out /nonexistent/x: no such folder"),
    (["compare", "/nonexistent/run"], 2, "RUNS /nonexistent/run: no such folder"),
])
def test_cli_errors_are_one_line_with_exit_codes(cli, args, code, message):
    res = cli(*args)
    assert res.code == code and message in res.stderr and "Traceback" not in res.stderr
