"""A small real CIFAR-10 subset: the first K images per class of the session's decoded archive."""

from __future__ import annotations

import pytest

TRAIN_PER_CLASS = 300  # 3,000 training images
TEST_PER_CLASS = 100  # 1,000 evaluation images from the official test split


@pytest.fixture(scope="session")
def cifar_small(cifar10):
    from effconv.training.methods import subset_per_class

    return subset_per_class(cifar10, TRAIN_PER_CLASS, TEST_PER_CLASS)
