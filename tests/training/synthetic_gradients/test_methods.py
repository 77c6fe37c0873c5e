"""The comparison harness: per-class subset against Pillow, the timed loop, the report's honesty rules."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch

from effconv.data import CLASSES, CifarArrays
from effconv.errors import CheckFailedError, InvalidInputError
from effconv.training.methods import EvalPoint, History, load_cifar_subset, per_class, run_loop
from effconv.training.session import TrainData


def _pillow(archive, suffix: str) -> np.ndarray:
    from PIL import Image

    with tarfile.open(archive, "r:xz") as tar:
        member = next(m for m in tar if m.name.endswith(suffix))
        with tar.extractfile(member) as fh, Image.open(fh) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)


def test_subset_is_the_first_images_of_each_class(cifar_small, cifar_tar):
    train, test = cifar_small.train, cifar_small.test
    assert train.images.shape == (3000, 32, 32, 3) and test.images.shape == (1000, 32, 32, 3)
    assert np.bincount(train.labels).tolist() == [300] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    # the readers sort each class by file name: the first test image is test/airplane/0000.jpg and
    # the last kept training image is train/truck/0299.jpg, pixel for pixel as Pillow decodes them
    assert test.labels[0] == 0 and np.array_equal(test.images[0], _pillow(cifar_tar, "test/airplane/0000.jpg"))
    assert train.labels[-1] == 9 and np.array_equal(train.images[-1], _pillow(cifar_tar, "train/truck/0299.jpg"))


def test_per_class_keeps_order_and_refuses_short_classes():
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2])
    arrays = CifarArrays(np.arange(9, dtype=np.uint8).reshape(9, 1, 1, 1), labels, ("a", "b", "c"))
    kept = per_class(arrays, 2)
    assert kept.images.ravel().tolist() == [0, 1, 2, 3, 4, 5]  # first two of each class, original order
    with pytest.raises(InvalidInputError, match="fewer than 4 images") as info:
        per_class(arrays, 4)
    assert info.value.exit_code == 3


def test_load_cifar_subset_reads_any_source(tmp_path):
    from effconv.errors import UsageError

    with pytest.raises(UsageError, match="no CIFAR-10 data found"):
        load_cifar_subset(tmp_path / "missing.tar.xz", 1, 1, cache_dir=tmp_path)


def test_run_loop_evaluates_on_schedule_and_at_the_end():
    seen, points = [], []
    hist = run_loop("m", lambda s: seen.append(s) or (float(s), s % 2), lambda: 0.5, steps=7, eval_every=3,
                    eval_size=10, on_eval=points.append)
    assert seen == list(range(1, 8))
    assert hist.steps == (3, 6, 7) and tuple(points) == hist.points
    assert hist.loss == (2.0, 5.0, 7.0)  # mean of (1,2,3), (4,5,6), (7)
    assert [p.train_accuracy for p in hist.points] == [2 / 3, 1 / 3, 1.0]
    assert hist.accuracy == (0.5, 0.5, 0.5)
    assert all(b >= a for a, b in zip(hist.seconds, hist.seconds[1:]))


def test_run_loop_refuses_a_diverged_run():
    with pytest.raises(CheckFailedError, match="not finite"):
        run_loop("m", lambda s: (float("nan"), 0.0), lambda: 0.0, steps=2, eval_every=1, eval_size=1)


def _hist(method, acc, seconds, n=1000):
    points = (EvalPoint(100, seconds / 2, acc / 2, 2.0, 0.0), EvalPoint(200, seconds, acc, 1.0, 0.0))
    return History(method, points, n)


@pytest.mark.parametrize(
    ("acc_a", "acc_b", "phrase"),
    [
        (0.40, 0.41, "no difference is shown"),  # 1 point << 2 s.e. (~4.4 points at n = 1000)
        (0.50, 0.40, "10.0 points higher"),
        (0.30, 0.40, "10.0 points lower"),
    ],
)
def test_verdict_states_only_what_the_numbers_support(acc_a, acc_b, phrase):
    from effconv.training.methods_report import verdict

    lines = verdict(_hist("A", acc_a, 20.0), _hist("B", acc_b, 10.0))
    assert phrase in lines[0]
    assert "2.00x the training time per step" in lines[1]
    assert f"B reached {acc_b:.1%}" in lines[2]  # B's whole run fits in A's 20 s


def _random_split(n: int, seed: int) -> CifarArrays:
    rng = np.random.default_rng(seed)
    return CifarArrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10, CLASSES)


def test_report_written_on_synthetic_data(tmp_path):
    from effconv.training.methods import LoopOptions
    from effconv.training.methods_report import run_comparisons

    data = TrainData(_random_split(64, 0), _random_split(20, 1))
    caps = dict(stem_channels=4, stem_kernel=5, stem_stride=2, primary_types=2, primary_kernel=5)
    md = run_comparisons(data, tmp_path / "out", steps=2, setup="tiny", capsnet_arch=caps, widths=(4, 8),
                         opts=LoopOptions(batch_size=16, eval_every=1))
    text = md.read_text()
    assert "| CapsNet |" in text and "| CNN |" in text and "| synthetic gradients |" in text and "| backprop |" in text
    assert (tmp_path / "out" / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["comparison.md", "comparison.png"]


def test_cnn_baseline_matches_the_capsule_head_cost():
    """matched_cnn's FC head costs the capsule layer's Mult-Adds (closed form), to within the half
    hidden unit that rounding its width can cost."""
    from effconv.training.methods_report import SMALL_CAPSNET, capsule_head_mult_adds, matched_cnn
    from effconv.zoo.capsnet import CapsNet

    caps = CapsNet(**SMALL_CAPSNET)
    # 200 primary capsules x 8-D -> 10 x 16-D, 3 routing iterations: 3 sums + 2 agreements
    assert capsule_head_mult_adds(caps) == 200 * 8 * 10 * 16 + 5 * 200 * 10 * 16
    fc = [m for m in matched_cnn(caps) if isinstance(m, torch.nn.Linear)]
    head = sum(m.in_features * m.out_features for m in fc)
    assert fc[0].in_features == 200 * 8 and abs(head - capsule_head_mult_adds(caps)) <= (1600 + 10) / 2
