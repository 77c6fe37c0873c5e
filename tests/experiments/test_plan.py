"""Reading run directories, scaling the paper's recipe, narrowing models (no training)."""

from __future__ import annotations

import json
import statistics

import pytest

from effconv.errors import InvalidInputError, UsageError
from effconv.experiments.runner import plan_experiment
from effconv.experiments.runs import read_run
from effconv.experiments.studies import EXPERIMENTS, RunOptions, narrow_model, run_config
from effconv.specs import load_spec

ROWS = [  # step, loss, test_acc, elapsed (s)
    (10, 2.3, None, 1.0), (20, 2.0, 0.30, 2.0), (30, 1.8, None, 3.0), (40, 1.6, 0.45, 4.0), (60, 1.5, 0.41, 6.0),
]


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"run_id": "r", "spec": {"name": "vgg19_3x3"}, "config": {"batch_size": 8},
                                               "total_steps": 60, "test_images": 500, "data_source": "x.tar.xz"}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": s, "loss": l, "train_acc": 0.5, "test_acc": a, "lr": 1e-3, "images_per_s": 1.0, "elapsed": e}) + "\n"
        for s, l, a, e in ROWS))
    return d


def test_read_run_summarizes_the_metrics(run_dir):
    r = read_run(run_dir)
    assert (r.label, r.spec_name, r.step, r.total_steps, r.status) == ("r", "vgg19_3x3", 60, 60, "complete")
    assert (r.first_acc, r.final_acc, r.best_acc) == (0.30, 0.41, 0.45)
    assert r.seconds_per_step == pytest.approx(6.0 / 60)
    assert [r.steps_to(t) for t in (0.3, 0.31, 0.45, 0.46)] == [20, 40, 40, None]
    # oracle: the sample standard deviation of the accuracy changes +0.15, -0.04
    assert r.acc_change_std() == pytest.approx(statistics.stdev([0.15, -0.04]))


def test_read_run_refuses_what_is_not_a_run(tmp_path, run_dir):
    with pytest.raises(UsageError, match="not a run directory"):
        read_run(tmp_path)
    (run_dir / "metrics.jsonl").write_text('{"step": "x"}\n')
    with pytest.raises(InvalidInputError, match="line 1"):
        read_run(run_dir)


@pytest.mark.parametrize(("spec", "scale", "steps", "subset", "eval_every", "eval_images"), [
    ("vgg19_3x3", 1.0, 20_000, None, 1000, None),  # the paper's recipe, 20 evaluations on all test images
    ("vgg19_3x3", 0.01, 200, 1280, 10, 500),  # subset: max(10 batches of 128, 500)
    ("vgg19_3x3", 0.1, 2000, 5000, 100, 1000),
    ("alexnet_cifar", 0.01, 3000, 1280, 150, 500),  # 300,000 steps in the paper
])
def test_scale_shrinks_steps_and_subset(spec, scale, steps, subset, eval_every, eval_images):
    cfg = run_config(load_spec(spec), RunOptions(scale=scale))
    assert (cfg.steps, cfg.subset, cfg.eval_every, cfg.eval_subset, cfg.batch_size) == (steps, subset, eval_every, eval_images, 128)


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"scale": 1.5}, {"width_mult": 0}, {"evals": 0}, {"threads": 0}])
def test_bad_options_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        RunOptions(**kwargs)


@pytest.mark.parametrize("name", ["vgg19_3x3", "vgg19_3x3_crelu", "vgg14_mixed", "alexnet_cifar"])
def test_narrow_model_scales_every_width_but_input_and_classes(name):
    import torch
    from torch import nn

    from effconv.zoo import build_model

    spec = load_spec(name)
    full, half = build_model(spec), narrow_model(build_model(spec), 0.5)
    pairs = list(zip([m for m in full.modules() if isinstance(m, (nn.Conv2d, nn.Linear))],
                     [m for m in half.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]))
    for i, (f, h) in enumerate(pairs):
        fin, fout = (f.in_channels, f.out_channels) if isinstance(f, nn.Conv2d) else (f.in_features, f.out_features)
        hin, hout = (h.in_channels, h.out_channels) if isinstance(h, nn.Conv2d) else (h.in_features, h.out_features)
        assert hin == (fin if i == 0 else fin // 2)
        assert hout == (fout if i == len(pairs) - 1 else fout // 2)
    assert half(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_narrow_model_refuses_fractional_widths():
    from effconv.zoo import build_model

    with pytest.raises(UsageError, match="whole number"):
        narrow_model(build_model(load_spec("vgg19_3x3")), 0.3)


def test_plan_refuses_a_folder_holding_another_scale(tmp_path):
    run = tmp_path / "momentum"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"total_steps": 999}))
    with pytest.raises(UsageError, match="999 steps"):
        plan_experiment("optimizer", RunOptions(scale=0.01), tmp_path)


def test_experiments_cover_the_papers_four_studies():
    assert set(EXPERIMENTS) == {"kernel-size", "optimizer", "activation", "batch-norm"}
    specs = {r.spec for r in EXPERIMENTS["batch-norm"].runs}
    assert len(specs) == 9 and "vgg19_3x3_lrn" in specs and "vgg19_3x3_crelu_nobn" in specs
    for exp in EXPERIMENTS.values():
        for r in exp.runs:
            load_spec(r.spec)  # every run names a real zoo spec


# The packed plan (effconv.experiments.plan): arithmetic over measured rates -------------------------
from effconv.experiments.plan import Rate, Rates, distinct_jobs, make_plan, predict_visit  # noqa: E402

START, EVAL, CLOSE = 2.0, 0.5, 0.3  # seconds (the probe's start, evaluation, close)
ALONE = {"vgg19_3x3": 0.010, "vgg19_5x5": 0.028, "vgg14_mixed": 0.012}  # seconds per step alone


def _full_scale_jobs(tmp_path, names=("kernel-size",)):
    folders = {n: tmp_path / n for n in names}
    return distinct_jobs(names, RunOptions(), folders)  # reads the (empty) folders; trains nothing


def _rates(factor: float, together: int) -> Rates:
    return Rates({m: Rate(s, EVAL, START, CLOSE) for m, s in ALONE.items()}, factor, together, "test")


def test_prediction_is_the_lockstep_arithmetic_over_the_rates(tmp_path):
    jobs, done, ready = _full_scale_jobs(tmp_path)
    assert (len(jobs), done, ready) == (3, [], []) and {j.steps_left for j in jobs} == {20_000}
    assert {j.evals_left for j in jobs} == {20}
    per_run = START + 20 * EVAL + CLOSE  # 12.3 s of each run's own start, evaluations and close
    # three at once, packing factor 0.7: 20,000 rounds of 0.7 x (10 + 28 + 12) ms
    order, wall = predict_visit(jobs, _rates(0.7, 3), 3)
    assert wall == pytest.approx(3 * per_run + 20_000 * 0.7 * 0.050)
    assert [j.item.plan.label for j in order] == ["5x5", "mixed", "3x3"]  # longest first
    # two slots: 5x5 and mixed together (g(2) = 0.85 of their 40 ms), then 3x3 alone
    wall2 = predict_visit(jobs, _rates(0.7, 3), 2)[1]
    assert wall2 == pytest.approx(3 * per_run + 20_000 * 0.85 * 0.040 + 20_000 * 0.010)
    # one slot: one after the other at the alone rates
    assert predict_visit(jobs, _rates(0.7, 3), 1)[1] == pytest.approx(3 * per_run + 20_000 * 0.050)
    # factor 0.4 would make a round (20 ms) faster than 5x5 alone (28 ms): a round is never that fast
    assert predict_visit(jobs, _rates(0.4, 3), 3)[1] == pytest.approx(3 * per_run + 20_000 * 0.028)


def test_visits_hold_whole_runs_and_over_budget_ones_are_named(tmp_path):
    jobs, done, _ = _full_scale_jobs(tmp_path)
    rates = _rates(0.7, 3)
    assert [len(v.jobs) for v in make_plan(jobs, done, rates, 3, 800.0).visits] == [3]  # 736.9 s fit
    # 300 s: 5x5 alone needs 572.3 s (over budget); mixed and 3x3 together 24.6 + 0.85 x 22 ms x 20,000 = 398.6 s
    # do not fit, so each gets a visit: mixed (252.3 s) first, then 3x3 (212.3 s)
    plan = make_plan(jobs, done, rates, 3, 300.0)
    assert [j.item.plan.label for j in plan.over_budget] == ["5x5"]
    assert [[j.item.plan.label for j in v.jobs] for v in plan.visits] == [["mixed"], ["3x3"]]
    assert [v.predicted_s for v in plan.visits] == pytest.approx([12.3 + 240.0, 12.3 + 200.0])
    allowed = make_plan(jobs, done, rates, 3, 300.0, allow_over_budget=True)
    assert [v.over_budget for v in allowed.visits] == [False, False, True] and allowed.visits[2].jobs[0].item.plan.label == "5x5"


def test_all_is_thirteen_distinct_runs(tmp_path):
    jobs, done, ready = _full_scale_jobs(tmp_path, ("kernel-size", "optimizer", "activation", "batch-norm"))
    assert len(jobs) == 13 and (done, ready) == ([], [])
    copies = {j.name: sorted(f"{n}/{p.plan.label}" for n, p in j.copies) for j in jobs if j.copies}
    assert copies == {"kernel-size/3x3": ["activation/relu", "batch-norm/relu-bn"],
                      "activation/swish": ["batch-norm/swish-bn"], "activation/elu": ["batch-norm/elu-bn"],
                      "activation/crelu": ["batch-norm/crelu-bn"]}
    assert sum(j.steps_left for j in jobs) == 11 * 20_000 + 2 * 300_000
