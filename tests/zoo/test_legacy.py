"""Checkpoints written before the zoo's modules were named still load, export and resume.

The oracles in tests/zoo/old_layout were written by the zoo as it was then (see its README.md):
they cannot be produced by today's code, so they check the key remap rather than restate it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from effconv.specs import spec_from_dict
from effconv.zoo import build_model, upgrade_state_dict
from effconv.zoo.legacy import legacy_keys

OLD = Path(__file__).resolve().parent / "old_layout"
LAYOUTS = json.loads((OLD / "layouts.json").read_text())
FINGERPRINTS = json.loads((OLD / "init_fingerprints.json").read_text())
OLD_BEST = OLD / "mobilenet_tiny_best.pt"


def meta_model(spec_dict: dict) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(spec_from_dict(spec_dict))


def shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_old_keys_map_onto_new_ones_in_order_with_their_shapes(name):
    model = meta_model(LAYOUTS[name]["spec"])
    new = model.state_dict()
    old = [entry.rsplit(" ", 1) for entry in LAYOUTS[name]["keys"]]
    fake = OrderedDict((key, torch.empty(0)) for key, _ in old)
    upgraded = upgrade_state_dict(model, fake)
    assert list(upgraded) == list(new)  # every key, registration order kept
    assert [shape(new[k]) for k in upgraded] == [s for _, s in old]
    assert all(k.startswith(("features.", "classifier.")) for k in new) or LAYOUTS[name]["spec"]["family"] == "capsnet"


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_naming_kept_initialisation_and_outputs(name):
    """Same seed, same tensors (weights, and running statistics after one train-mode forward), same
    train-mode outputs as the old layout."""
    entry = FINGERPRINTS[name]
    spec = spec_from_dict(entry["spec"])
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.randn(2, *spec.input_shape()[1:], generator=torch.Generator().manual_seed(1))
    model.train()
    torch.manual_seed(2)
    with torch.no_grad():
        y = model(x).double()
    # the generator summed the state after that forward: batchnorm's running statistics included
    sums = [float(v.double().sum()) for v in model.state_dict().values()]
    assert sums == pytest.approx(entry["tensor_sums"], rel=1e-6, abs=1e-6)
    assert float(y.sum()) == pytest.approx(entry["train_output_sum"], rel=1e-4, abs=1e-5)
    assert float(y.abs().sum()) == pytest.approx(entry["train_output_abs_sum"], rel=1e-4, abs=1e-5)


def test_current_keys_come_back_unchanged():
    model = meta_model(LAYOUTS["resnet20"]["spec"])
    state = model.state_dict()
    assert upgrade_state_dict(model, state) is state


def test_foreign_keys_come_back_unchanged_and_still_fail_to_load():
    model = build_model(spec_from_dict(LAYOUTS["resnet20"]["spec"]))
    state = {"not.a.key": torch.zeros(1)}
    assert upgrade_state_dict(model, state) is state
    with pytest.raises(RuntimeError, match="not.a.key"):
        model.load_state_dict(upgrade_state_dict(model, state))


def test_old_trainer_checkpoint_loads_with_the_old_outputs():
    from effconv.training.checkpoint import load_checkpoint, load_run

    assert next(iter(load_checkpoint(OLD_BEST)["model"])).startswith("0.0.")  # really the old layout
    run = load_run(OLD_BEST)
    io = torch.load(OLD / "mobilenet_tiny_io.pt", weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(run.model(io["input"]), io["eval_output"])
        run.model.train()
        torch.manual_seed(0)
        torch.testing.assert_close(run.model(io["input"]), io["train_output_seed0"])


def test_old_trainer_checkpoint_exports_with_readable_names(tmp_path):
    import onnx

    from effconv.export.api import ExportOptions, export_model

    out = tmp_path / "old.onnx"
    result = export_model(OLD_BEST, out, ExportOptions(parity_images=2))
    assert all(p.passed for p in result.parity)
    names = [n.name for n in onnx.load(str(out)).graph.node]
    assert "/features/features.1/dw/conv/Conv" in names and "/classifier/fc/linear/Gemm" in names


def test_old_last_checkpoint_resumes(tmp_path):
    """A last.pt whose model keys are in the old layout (renamed back from a fresh run) resumes."""
    import numpy as np

    from effconv.training import checkpoint as ckpt
    from effconv.data import CLASSES, CifarArrays
    from effconv.training.api import TrainData, resume, train
    from effconv.training.config import TrainConfig

    rng = np.random.default_rng(0)
    arrays = CifarArrays(rng.integers(0, 255, (32, 32, 32, 3)).astype(np.uint8), rng.integers(0, 10, 32), CLASSES)
    data = TrainData(arrays, arrays, "synthetic")
    spec = spec_from_dict(FINGERPRINTS["mobilenet_v1_cifar+a0.25+dropout"]["spec"])
    cfg = TrainConfig(steps=2, batch_size=8, eval_every=2, log_every=1, device="cpu", channels_last=False)
    run = train(spec, cfg, data=data, out=tmp_path / "run").run_dir
    payload = ckpt.load_checkpoint(run / ckpt.LAST)
    old_of = {new: old for old, new in legacy_keys(build_model(spec)).items()}
    payload["model"] = OrderedDict((old_of[k], v) for k, v in payload["model"].items())
    payload.pop("format")
    ckpt.save_checkpoint(run / ckpt.LAST, payload)
    assert resume(run, steps=3, data=data).step == 3
