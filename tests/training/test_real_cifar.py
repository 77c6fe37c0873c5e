"""Real CIFAR-10 (the JPEG archive in ../shared/data): ResNet-20 trained on the CPU for 300 steps of
64 images (0.38 epoch, fixed seed) must beat 40% on all 10,000 test images.

The archive is JPEG re-encoded, so accuracies run about a point below the official release.
"""

from __future__ import annotations

import pytest

from effconv.specs import load_spec
from effconv.training.api import TrainConfig, train


def test_resnet20_beats_40_percent(cifar10, tmp_path):
    spec = load_spec("resnet20")
    # Adam at 2e-3 with a cosine decay to zero (so batch-norm statistics settle by the end); no
    # augmentation: in well under one epoch it only slows learning.
    config = TrainConfig(steps=300, batch_size=64, lr=0.002, schedule="cosine", augment=False, eval_every=300, seed=0)
    result = train(spec, config, data=cifar10, out=tmp_path / "run")
    assert result.step == 300 and len(cifar10.test) == 10_000
    assert result.test_acc > 0.40, f"test accuracy {result.test_acc:.2%} after 300 steps"
