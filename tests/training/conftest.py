"""Small synthetic data and a tiny network, so loop tests take a second, not minutes.

Test modules reach these helpers through the `kit` fixture (pytest's importlib mode gives no
sibling imports)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from effconv.data import CLASSES, CifarArrays
from effconv.training.api import TrainData


def synthetic(n: int, seed: int) -> CifarArrays:
    """Learnable: the red channel's mean encodes the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 80, (n, 32, 32, 3)).astype(np.uint8)
    images[..., 0] += (labels * 17).astype(np.uint8)[:, None, None]
    return CifarArrays(images, labels.astype(np.int64), CLASSES)


def tiny_data(n_train: int = 96, n_test: int = 40) -> TrainData:
    return TrainData(synthetic(n_train, 0), synthetic(n_test, 1), "synthetic")


class TinyNet(nn.Sequential):
    """Two strided convs, dropout (so the global RNG matters for exact resume), a linear head."""

    def __init__(self, seed: int = 0, norm: bool = True) -> None:
        torch.manual_seed(seed)
        super().__init__(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8) if norm else nn.Identity(),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(16, 10),
        )


def write_png_tree(root, data: TrainData):
    """An ImageFolder tree root/{train,test}/<class>/NNNN.png of `data` (PNG: lossless)."""
    from PIL import Image

    for split in ("train", "test"):
        arrays = getattr(data, split)
        for i, (image, label) in enumerate(zip(arrays.images, arrays.labels)):
            folder = root / split / arrays.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


TINY_SPEC = """
name = "tiny_mobilenet"
family = "mobilenet"
description = "MobileNet v1 at a quarter width, no normalization: tiny, and DDP-exact"
input_size = 32
num_classes = 10
[arch]
config = "cifar"
alpha = 0.25
norm = "none"
[train]
batch_size = 16
steps = 4
eval_every = 2
log_every = 2
"""


def write_tiny_spec(folder):
    path = folder / "tiny_mobilenet.toml"
    path.write_text(TINY_SPEC)
    return path


def weights(path_or_state) -> dict[str, torch.Tensor]:
    if isinstance(path_or_state, dict):
        return path_or_state
    from effconv.training.checkpoint import load_checkpoint

    return load_checkpoint(path_or_state)["model"]


def assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


@pytest.fixture(scope="session")
def kit():
    return sys.modules[__name__]
