"""A model trained on real CIFAR-10 keeps its top-1 answers through ONNX export: the exported file
gives the same class as PyTorch on >= 99.9% of the 10,000 real test images.

The model is the zoo's MobileNet v1 (CIFAR config) at width 0.25, trained briefly from a run
directory as `effconv train` writes it: accuracy does not matter here, agreement does, and the
narrow width keeps 2 x 10,000 forward passes within the test budget on two cores.
"""

from __future__ import annotations

import json

import pytest

from effconv.export.api import ExportOptions, export_model, normalize
from effconv.export.metadata import read_metadata
from effconv.export.parity import check_onnx_parity


@pytest.fixture(scope="module")
def trained_run(cifar10, tmp_path_factory):
    from effconv.specs import load_spec
    from effconv.zoo import with_arch
    from effconv.training.api import TrainConfig, train

    spec = with_arch(load_spec("mobilenet_v1_cifar"), alpha=0.25)
    # A few steps move the weights off their initialization; more would only cost time (~2 s/step).
    config = TrainConfig(steps=8, batch_size=32, subset=256, eval_every=8, eval_subset=100, log_every=8)
    result = train(spec, config, data=cifar10, out=tmp_path_factory.mktemp("run") / "run", quiet=True)
    return result.run_dir


def test_trained_model_top1_agrees_on_real_test_set(trained_run, cifar10, tmp_path):
    from effconv.training.checkpoint import load_run

    out = tmp_path / "trained.onnx"
    export_model(trained_run, out, ExportOptions(dynamic_batch=True, parity=False))
    run = load_run(trained_run)
    meta = read_metadata(out)
    assert meta["effconv.run_id"] == run.run_id and "effconv.seed" not in meta
    assert json.loads(meta["effconv.std"]) == pytest.approx(list(run.std))
    images = normalize(cifar10.test.images, run.mean, run.std)
    assert images.shape == (10_000, 3, 32, 32)
    result = check_onnx_parity(run.model, out, [("cifar10-test", images)], precision="fp32")
    (real,) = result.sets
    print(f"trained {run.spec.name}: {real}")  # the measured figures, shown with pytest -rP
    assert real.images == 10_000
    assert real.top1_agreement >= 0.999, real
    assert result.passed and real.max_rel_err < 1e-5
