"""CapsNet learns real CIFAR-10 images at small scale (chance is 10%).

Measured (seed 0, 1,000 evaluation images, 2-core CPU): 25.4% after 20 steps, 29.2% after 40,
35.9% after 120; margin + reconstruction loss 2.08 over steps 1-20, 1.98 over steps 21-40.
"""

from __future__ import annotations

import torch

from effconv.training.methods import LoopOptions, train_classifier
from effconv.training.methods_report import SMALL_CAPSNET
from effconv.zoo.capsnet import CapsNet, training_loss


def test_capsnet_beats_chance_on_real_cifar(cifar_small):
    torch.manual_seed(0)
    model = CapsNet(**SMALL_CAPSNET)  # 200 primary capsules, 10 x 16-D class capsules, 3 iterations
    hist = train_classifier(model, cifar_small, method="CapsNet", steps=40, loss_fn=training_loss,
                            opts=LoopOptions(batch_size=32, lr=1e-3, eval_every=20))
    # 1,000 evaluation images: chance is 10% with a standard error of about 1 point
    assert hist.final_accuracy > 0.20, hist
    assert hist.loss[1] < hist.loss[0], hist  # the loss of steps 21-40 is below that of steps 1-20
