"""`effconv train` with a method's own training: CapsNet's margin loss, and --synthetic-gradients.

Oracle for the loss: the first metrics row (log_every 1) holds the loss of step 1, which must equal
the method's loss recomputed here from the seeded initial weights on the first batch.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from effconv.training import checkpoint as ckpt
from effconv.data import decode_source
from effconv.data.batches import EvalBatches, TrainBatches

CAPSNET_SPEC = """
name = "capsnet_small"
family = "capsnet"
input_size = 32
num_classes = 10
[arch]
stem_channels = 8
stem_kernel = 5
stem_stride = 2
primary_types = 4
primary_kernel = 5
decoder_hidden = {decoder}
[train]
batch_size = 16
steps = 3
eval_every = 3
log_every = 1
augment = false
"""

VGG_SPEC = """
name = "vgg_small"
family = "vgg"
input_size = 32
num_classes = 10
[arch]
config = "11_3x3"
fc_width = 16
[train]
batch_size = 4
steps = 2
eval_every = 1
augment = false
"""


@pytest.fixture(scope="module")
def pngs(tmp_path_factory, kit):
    """A PNG ImageFolder of synthetic images, and its arrays as the CLI's reader returns them."""
    root = tmp_path_factory.mktemp("methods")
    tree = kit.write_png_tree(root / "pngs", kit.tiny_data(48, 24))
    return tree, decode_source(tree)


def _spec(tmp_path, text: str, name: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    from effconv.specs import load_spec

    return path, load_spec(path)


def _first_batch(arrays, batch: int):
    return TrainBatches(arrays["train"], batch, torch.device("cpu"), seed=0, augment=False).next()


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _accuracy(model, arrays) -> float:
    with torch.no_grad():
        right = sum(int((model(x).argmax(1) == y).sum()) for x, y in EvalBatches(arrays["test"], torch.device("cpu")))
    return right / len(arrays["test"])


@pytest.mark.parametrize("decoder", ["[16]", "[]"])
def test_capsnet_trains_with_the_margin_loss(cli, pngs, tmp_path, decoder):
    from effconv.zoo import build_model
    from effconv.zoo.capsnet import margin_loss

    tree, arrays = pngs
    path, spec = _spec(tmp_path, CAPSNET_SPEC.format(decoder=decoder), "capsnet_small")
    run = tmp_path / "run"
    res = cli("train", path, "--data", tree, "--out", run, "--quiet")
    assert res.code == 0, res.stderr
    torch.manual_seed(0)  # the run's seed: build_model follows it
    model = build_model(spec)
    x, y = _first_batch(arrays, 16)
    with torch.no_grad():
        v = model.forward_capsules(x)
        lengths = torch.sqrt((v * v).sum(-1))
        want = margin_loss(lengths, y)
        if decoder != "[]":  # + 0.0005 x per-image sum of squared reconstruction errors, batch mean
            want = want + 0.0005 * ((model.reconstruct(v, y) - x.flatten(1)) ** 2).sum(1).mean()
    rows = _rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["loss"] == pytest.approx(float(want), rel=1e-5)
    assert abs(float(F.cross_entropy(lengths, y)) - float(want)) > 0.1  # not what cross-entropy gives
    # the recorded test accuracy is the argmax of the capsule lengths of the saved weights
    assert _accuracy(ckpt.load_run(run).model, arrays) == pytest.approx(rows[-1]["test_acc"])


def test_synthetic_gradients_run_directory(cli, pngs, tmp_path):
    from effconv.zoo import build_model

    tree, arrays = pngs
    path, spec = _spec(tmp_path, VGG_SPEC, "vgg_small")
    run = tmp_path / "run"
    res = cli("train", path, "--synthetic-gradients", "--data", tree, "--out", run, "--quiet")
    assert res.code == 0, res.stderr
    assert "test accuracy" in res.stdout and "(step 2/2" in res.stdout
    assert json.loads((run / "config.json").read_text())["config"]["synthetic_gradients"] is True
    assert {p.name for p in run.iterdir()} == {"config.json", "metrics.jsonl", "metrics.csv", "best.pt", "curve.png"}
    rows = _rows(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["test_acc"] is not None for r in rows) and 0 < rows[0]["elapsed"] < rows[1]["elapsed"]
    # step 1: every block starts from the seeded initial weights; the loss is the true cross-entropy
    torch.manual_seed(0)
    model = build_model(spec).train()
    x, y = _first_batch(arrays, 4)
    with torch.no_grad():
        assert rows[0]["loss"] == pytest.approx(float(F.cross_entropy(model(x), y)), rel=1e-5)
    # best.pt holds the weights of the best evaluation (the blocks share the zoo model's modules)
    loaded = ckpt.load_run(run)
    assert loaded.meta["best_acc"] == max(r["test_acc"] for r in rows)
    assert _accuracy(loaded.model, arrays) == pytest.approx(loaded.meta["best_acc"])
    res = cli("train", "--resume", run, "--steps", "6", "--quiet")
    assert res.code == 2 and "cannot be resumed" in res.stderr


@pytest.mark.parametrize(
    ("spec_text", "extra", "message"),
    [
        (CAPSNET_SPEC.format(decoder="[]"), [], "trains VGG-family specs"),
        (VGG_SPEC, ["--precision", "bf16"], "not: precision"),
    ],
)
def test_synthetic_gradients_usage_errors(cli, pngs, tmp_path, spec_text, extra, message):
    path, _ = _spec(tmp_path, spec_text, "spec")
    res = cli("train", path, "--synthetic-gradients", *extra, "--data", pngs[0], "--out", tmp_path / "r", "--quiet")
    assert res.code == 2 and message in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()  # refused before anything was written
