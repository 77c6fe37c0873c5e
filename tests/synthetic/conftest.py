"""A small real CIFAR-10 subset, decoded once per session from the shared JPEG archive."""

from __future__ import annotations

import pytest

TRAIN_PER_CLASS = 300  # 3,000 training images
TEST_PER_CLASS = 100  # 1,000 evaluation images from the official test split


@pytest.fixture(scope="session")
def cifar_small(cifar_tar):
    from effconv.compare import load_cifar_subset

    return load_cifar_subset(cifar_tar, TRAIN_PER_CLASS, TEST_PER_CLASS)
