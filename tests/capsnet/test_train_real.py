"""CapsNet learns real CIFAR-10 images at small scale (chance is 10%)."""

from __future__ import annotations

import torch

from effconv.compare import train_classifier
from effconv.compare_report import SMALL_CAPSNET
from effconv.zoo.capsnet import CapsNet, training_loss


def test_capsnet_beats_chance_on_real_cifar(cifar_small):
    torch.manual_seed(0)
    model = CapsNet(**SMALL_CAPSNET)  # 200 primary capsules, 10 x 16-D class capsules, 3 iterations
    hist = train_classifier(
        model, cifar_small, method="CapsNet", loss_fn=lambda m, x, y: training_loss(m, x, y)[0],
        steps=150, batch_size=32, lr=1e-3, eval_every=150,
    )
    # 1,000 evaluation images: chance is 10% with a standard error of about 1 point
    assert hist.final_accuracy > 0.20, hist
    assert hist.loss[-1] < 1.9  # margin + reconstruction loss starts near 2.1 on these images
