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
