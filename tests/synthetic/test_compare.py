"""The comparison harness: subset reader against Pillow, the timed loop, the report's honesty rules."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch

from effconv.compare import History, TensorData, arrays_to_data, load_cifar_subset, run_loop
from effconv.errors import UsageError


def test_subset_reader_matches_pillow(cifar_small, cifar_tar):
    from PIL import Image

    data = cifar_small
    assert data.x_train.shape == (3000, 3, 32, 32) and data.x_test.shape == (1000, 3, 32, 32)
    assert torch.bincount(data.y_train).tolist() == [300] * 10
    assert torch.bincount(data.y_test).tolist() == [100] * 10
    # per-channel statistics of the training part are 0 and 1 after normalization
    assert torch.allclose(data.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(data.x_train.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    # the first test image is test/airplane/0000.jpg; normalization is affine per channel, so each
    # channel correlates exactly with Pillow's decode of that file
    with tarfile.open(cifar_tar, "r:xz") as tar:
        member = next(m for m in tar if m.name.endswith("test/airplane/0000.jpg"))
        with tar.extractfile(member) as fh, Image.open(fh) as img:
            want = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert data.y_test[0] == 0
    for ch in range(3):
        corr = np.corrcoef(data.x_test[0, ch].flatten().numpy(), want[:, :, ch].flatten())[0, 1]
        assert corr > 0.99999


def test_normalization_uses_training_statistics():
    # training set: one black and one white image -> mean 0.5; unbiased std over 2 * 1024 pixels
    train = np.stack([np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)])
    test = np.full((1, 32, 32, 3), 51, np.uint8)  # 0.2 on the 0-1 scale
    data = arrays_to_data(train, np.array([0, 1]), test, np.array([1]))
    std = 0.5 * np.sqrt(2048 / 2047)
    assert torch.allclose(data.x_test, torch.full((1, 3, 32, 32), (0.2 - 0.5) / std), atol=1e-6)
    assert data.num_classes == 2


def test_subset_reader_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_cifar_subset(tmp_path / "missing.tar.xz", 1, 1)
    bad = tmp_path / "bad.tar.xz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(Exception, match="cannot read the archive") as info:
        load_cifar_subset(bad, 1, 1)
    assert info.value.exit_code == 3


def test_run_loop_evaluates_on_schedule_and_at_the_end():
    seen = []
    hist = run_loop("m", lambda s: seen.append(s) or float(s), lambda: 0.5, steps=7, eval_every=3, eval_size=10)
    assert seen == list(range(1, 8))
    assert hist.steps == (3, 6, 7)
    assert hist.loss == (2.0, 5.0, 7.0)  # mean of (1,2,3), (4,5,6), (7)
    assert hist.accuracy == (0.5, 0.5, 0.5)
    assert all(b >= a for a, b in zip(hist.seconds, hist.seconds[1:]))


def test_run_loop_refuses_a_diverged_run():
    with pytest.raises(UsageError, match="not finite"):
        run_loop("m", lambda s: float("nan"), lambda: 0.0, steps=2, eval_every=1, eval_size=1)


def _hist(method, acc, seconds, n=1000):
    return History(method, (100, 200), (seconds / 2, seconds), (acc / 2, acc), (2.0, 1.0), n)


@pytest.mark.parametrize(
    ("acc_a", "acc_b", "phrase"),
    [
        (0.40, 0.41, "no difference is shown"),  # 1 point << 2 s.e. (~4.4 points at n = 1000)
        (0.50, 0.40, "10.0 points higher"),
        (0.30, 0.40, "10.0 points lower"),
    ],
)
def test_verdict_states_only_what_the_numbers_support(acc_a, acc_b, phrase):
    from effconv.compare_report import verdict

    lines = verdict(_hist("A", acc_a, 20.0), _hist("B", acc_b, 10.0))
    assert phrase in lines[0]
    assert "2.00x the training time per step" in lines[1]
    assert f"B reached {acc_b:.1%}" in lines[2]  # B's whole run fits in A's 20 s


def test_report_written_on_synthetic_data(tmp_path):
    from effconv.compare_report import run_comparisons

    gen = torch.Generator().manual_seed(0)
    data = TensorData(torch.randn(64, 3, 32, 32, generator=gen), torch.arange(64) % 10,
                      torch.randn(20, 3, 32, 32, generator=gen), torch.arange(20) % 10)
    caps = dict(stem_channels=4, stem_kernel=5, stem_stride=2, primary_types=2, primary_kernel=5)
    md = run_comparisons(data, tmp_path, steps=2, setup="tiny", capsnet_arch=caps, widths=(4, 8),
                         batch_size=16, eval_every=1)
    text = md.read_text()
    assert "| CapsNet |" in text and "| CNN |" in text and "| synthetic gradients |" in text and "| backprop |" in text
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.md", "comparison.png"]
