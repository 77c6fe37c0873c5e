"""CIFAR-10: its format (constants, arrays), the readers of every source, the verified download,
`load_cifar10` (effconv.data.api), which finds a source and caches what it decodes, and the
device-side batches for training and evaluation (effconv.data.batches, which needs torch).

The names below are the stage's public surface, torch-free; import them from here, and the
batches from effconv.data.batches.
"""

from effconv.data.api import candidate_sources, decode_source, default_cache_dir, load_cifar10, resolve_source
from effconv.data.download import download_cifar10
from effconv.data.format import (
    CIFAR10_MD5, CIFAR10_URL, CIFAR_MEAN, CIFAR_STD, CLASSES, DOWNLOAD_NAME, IMAGE_SUFFIXES, PYTHON_FILES, SPLITS,
    CifarArrays,
)
from effconv.data.readers import unpickle_batch

__all__ = [
    "CIFAR10_MD5", "CIFAR10_URL", "CIFAR_MEAN", "CIFAR_STD", "CLASSES", "DOWNLOAD_NAME", "IMAGE_SUFFIXES",
    "PYTHON_FILES", "SPLITS", "CifarArrays", "candidate_sources", "decode_source", "default_cache_dir",
    "download_cifar10", "load_cifar10", "resolve_source", "unpickle_batch",
]
