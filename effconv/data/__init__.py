"""CIFAR-10: its format (constants, arrays), the readers of every source, the verified download,
and `load_cifar10` (effconv.data.api), which finds a source and caches what it decodes.

The names below are the stage's public surface; import them from here.
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
