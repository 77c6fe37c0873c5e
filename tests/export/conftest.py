"""Export tests read real CIFAR-10 through the decoded cache the training tests fill (one decode per
session), and fall back to random parity inputs when the data is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

CIFAR_JPG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpg.tar.xz"


@pytest.fixture
def real_data(request, monkeypatch, tmp_path_factory) -> bool:
    """Point effconv's default data search at the shared archive and the session's decoded cache;
    False (and no real images) when the archive is absent."""
    if not CIFAR_JPG.is_file():
        monkeypatch.setenv("EFFCONV_DATA", str(CIFAR_JPG))  # absent: the search then finds nothing here
        return False
    request.getfixturevalue("cifar10")  # decodes once per session into the pytest cache
    store = getattr(request.config, "cache", None)  # None with -p no:cacheprovider: decode again
    cache = store.mkdir("effconv-cifar10") if store is not None else tmp_path_factory.getbasetemp() / "export-cache"
    monkeypatch.setenv("EFFCONV_DATA", str(CIFAR_JPG))
    monkeypatch.setenv("EFFCONV_CACHE", str(cache))
    return True
