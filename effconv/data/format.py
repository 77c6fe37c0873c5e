"""CIFAR-10's format: the class names, the published per-channel statistics, the official
release's file names and address, and `CifarArrays`, one decoded split. numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and standard deviation of the 50,000 training images, 0-1 scale (RGB).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PYTHON_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published beside the official archive
DOWNLOAD_NAME = "cifar-10-python.tar.gz"  # the archive's name in the cache


@dataclass(frozen=True)
class CifarArrays:
    """One split: `images` uint8 [N, 32, 32, 3] (RGB, HWC), `labels` int64 [N], class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)
